import { createHmac, timingSafeEqual } from "node:crypto";

const TOLERANCE_SECONDS = 300; // 5 minutes, either way

// True if `header` (the Safeguard-Signature value) signs `body`, the raw request
// bytes exactly as received, under `secret` (the whole whsec_... string).
export function verifySignature(secret: string, header: string, body: Buffer,
                                tolerance: number = TOLERANCE_SECONDS): boolean {
  let t: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) return false;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t") {
      if (t !== undefined || !/^-?\d+$/.test(value)) return false;
      t = Number(value);
    } else if (key === "v1") {
      signatures.push(value);
    }
  }
  if (t === undefined || signatures.length === 0) return false;
  // Stale or from the future: a replay or a skewed clock.
  if (Math.abs(Date.now() / 1000 - t) > tolerance) return false;
  const expected = createHmac("sha256", secret).update(`${t}.`).update(body).digest();
  // Any v1 may match: during a secret rotation there is one per secret.
  return signatures.some((s) => {
    const given = Buffer.from(s, "hex");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
