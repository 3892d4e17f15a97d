/** Frames a connection may send before it can serve them (auth still running). */
export const MAX_HELD_FRAMES = 64;

/**
 * Keeps a connection's frames, in order, until it is ready, then hands them
 * over. Bounded so a client cannot queue unlimited work behind a slow auth;
 * the dialect answers an overflow in its own terms.
 */
export class HeldFrames {
  private frames: string[] | null = [];

  /** "run" once released; otherwise the frame is kept ("held") or refused ("full"). */
  offer(text: string): "run" | "held" | "full" {
    if (this.frames === null) return "run";
    if (this.frames.length >= MAX_HELD_FRAMES) return "full";
    this.frames.push(text);
    return "held";
  }

  /** Stops holding and runs what was held, oldest first. */
  release(run: (text: string) => void): void {
    const frames = this.frames ?? [];
    this.frames = null;
    for (const text of frames) run(text);
  }
}
