// The ceiling row of bench/gateway.ts: a uWebSockets.js server (the fast port's library, in its own
// Node.js process like a server) that does the least any JSON gateway must do per request: read the
// body, JSON.parse it, and answer through the fast port's own reply writer (status line and headers).
// The answer is a constant, etcd-shaped body of a range response's size: no Raft, WAL, storage or
// protobuf. What it serves under the same wrk load is the most any server built this way can serve on
// the machine.
//
//   node dist/bench/lib/noop_http.js PORT     (prints "listening PORT" when ready)
import { sendReply, uws } from '../../src/main/gateway/uws_server';

const body = '{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"2","raft_term":"2"},' +
  '"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}';

function main(): void {
  const port = Number(process.argv[2]);
  uws().App().any('/*', (res) => {
    let aborted = false;
    res.onAborted(() => { aborted = true; });
    let chunks: Buffer[] = [];
    res.onData((ab, isLast) => {
      chunks.push(Buffer.from(new Uint8Array(ab))); // a copy: the view dies with this callback
      if (!isLast) return;
      const text = Buffer.concat(chunks).toString('utf8');
      chunks = [];
      let status = 200;
      try {
        JSON.parse(text);
      } catch {
        status = 400;
      }
      if (aborted) return;
      res.cork(() => sendReply(res, { status, body }));
    });
  }).listen('127.0.0.1', port, (token) => {
    if (!token) {
      console.error(`cannot listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    console.log(`listening ${port}`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main();
