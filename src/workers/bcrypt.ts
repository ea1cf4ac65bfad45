// Bcrypt pool task (piscina): hash or compare one password (task types: src/shared/auth/bcrypt_task.ts).
// bcryptjs's synchronous calls are fine here: this thread does nothing else.
import * as bcrypt from 'bcryptjs';
import type { BcryptResult, BcryptTask } from '../shared/auth/bcrypt_task';

export default function bcryptTask(task: BcryptTask): BcryptResult {
  if (task.op === 'hash') return bcrypt.hashSync(task.password, task.cost);
  return bcrypt.compareSync(task.password, task.hash);
}
