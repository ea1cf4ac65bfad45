/** The address to bind for a listen URL: localhost binds 127.0.0.1, IPv6 brackets dropped. */
export function hostOf(u: URL): string {
  return u.hostname === 'localhost' ? '127.0.0.1' : u.hostname.replace(/^\[|\]$/g, '');
}
