import { clearTimer, setTimer, type TimerHandle } from "./platform.js";

/**
 * The gateway ends a `typing.start` after 5 s without another one, so a user
 * who keeps typing must renew it before that; every 3 s leaves room for a slow link.
 */
export const TYPING_RENEW_MS = 3000;
/** Typing with no keystroke for this long counts as stopped (`typing()` helper). */
export const TYPING_IDLE_MS = 4000;
/**
 * How long a remote user shows as typing without a renewal: the gateway's 5 s
 * plus slack. Covers a stop that never comes (their gateway was killed).
 */
export const TYPING_REMOTE_EXPIRY_MS = 6000;

/** Who is typing in one stream, each entry forgotten after TYPING_REMOTE_EXPIRY_MS. */
export class TypingTracker {
  private readonly users = new Map<string, TimerHandle>();

  constructor(
    private readonly changed: (userId: string, active: boolean) => void,
    private readonly expiryMs = TYPING_REMOTE_EXPIRY_MS,
  ) {}

  update(userId: string, active: boolean): void {
    const had = this.users.has(userId);
    clearTimer(this.users.get(userId));
    this.users.delete(userId);
    if (active) {
      this.users.set(
        userId,
        setTimer(() => this.update(userId, false), this.expiryMs),
      );
    }
    if (had !== active || active) this.changed(userId, active);
  }

  get active(): string[] {
    return [...this.users.keys()];
  }

  clear(): void {
    for (const userId of [...this.users.keys()]) this.update(userId, false);
  }
}

/**
 * This client's own typing in one stream: `start` sends typing.start and
 * renews it while it lasts, `stop` sends typing.stop once, `keystroke` starts
 * and stops by itself after TYPING_IDLE_MS of quiet.
 */
export class OwnTyping {
  private renew: TimerHandle | undefined;
  private idle: TimerHandle | undefined;
  private on = false;

  constructor(private readonly send: (active: boolean) => void) {}

  start(): void {
    clearTimer(this.renew);
    this.send(true);
    this.on = true;
    this.renew = setTimer(() => this.start(), TYPING_RENEW_MS);
  }

  stop(): void {
    clearTimer(this.renew);
    clearTimer(this.idle);
    this.renew = this.idle = undefined;
    if (!this.on) return;
    this.on = false;
    this.send(false);
  }

  keystroke(): void {
    if (!this.on) this.start();
    clearTimer(this.idle);
    this.idle = setTimer(() => this.stop(), TYPING_IDLE_MS);
  }

  get active(): boolean {
    return this.on;
  }
}
