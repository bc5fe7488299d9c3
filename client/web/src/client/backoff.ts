/**
 * When to reconnect after the WebSocket closed (docs/protocol.md §7, close codes).
 * Pure: the caller owns the timer; jitter comes from an injected random source.
 *
 * - 1008 (failed login, repeated invalid frames), 4001 (superseded by a newer
 *   connection of this device) and 4003 (logged out by the school) are final: the
 *   user has to act, a retry would not help.
 * - Anything else (1001 going away, 1006 network drop, 4002 slow reader, …):
 *   reconnect after `initial · 2^n` ms, capped at `max`, with ±20 % jitter, at most
 *   `attempts` times in a row; {@link Backoff.reset} after a successful login.
 */

export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([1008, 4001, 4003]);

export function mayReconnect(code: number): boolean {
  return !FINAL_CLOSE_CODES.has(code);
}

export class Backoff {
  private failures = 0;

  constructor(
    readonly initialMs = 500,
    readonly maxMs = 30_000,
    readonly attempts = 12,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt, or null once the attempts are spent. */
  next(): number | null {
    if (this.failures >= this.attempts) return null;
    const base = Math.min(this.maxMs, this.initialMs * 2 ** this.failures);
    this.failures += 1;
    const jitter = 0.8 + 0.4 * this.random();
    return Math.round(Math.min(this.maxMs, base * jitter));
  }

  get attempt(): number {
    return this.failures;
  }

  reset(): void {
    this.failures = 0;
  }
}
