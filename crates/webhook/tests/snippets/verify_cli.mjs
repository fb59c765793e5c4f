// Test harness for the TypeScript snippet in docs/webhooks.md, run on the copy the Rust test
// strips of its type annotations (verify.mjs): exit 0 when the body on stdin verifies under
// argv[2] with the header argv[3], 1 when it does not.
import { verifySignature } from "./verify.mjs";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
process.exit(verifySignature(process.argv[2], process.argv[3], Buffer.concat(chunks)) ? 0 : 1);
