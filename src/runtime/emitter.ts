import { EventEmitter } from "node:events";

/** Where a listener's exception is reported (a pino logger fits). */
export interface ListenerErrorLog {
  error(fields: object, message: string): void;
}

// The shapes of node's typed EventEmitter signatures (not exported by @types/node), so `emit` keeps its typing.
type DefaultEventMap = [never];
type EventKey<K, T> = T extends DefaultEventMap ? string | symbol : K | keyof T;
type EventArgs<K, T> = T extends DefaultEventMap ? unknown[] : K extends keyof T ? T[K] : never;

/** Events as a map from name to the arguments a listener receives. */
export type EventMap<T> = Record<keyof T, unknown[]>;

/**
 * The one listener policy of every escheduler emitter: a listener that throws (or whose returned
 * promise rejects) is logged and skipped, so it never changes its emitter's control flow; the other
 * listeners still run. An `error` event nobody listens to is dropped instead of crashing the process
 * (the emitter logs its errors itself).
 */
export class SafeEmitter<T extends EventMap<T>> extends EventEmitter<T> {
  /** Subclasses point this at their own logger. */
  protected listenerErrorLog: ListenerErrorLog = { error: () => undefined };

  override emit<K>(event: EventKey<K, T>, ...args: EventArgs<K, T>): boolean {
    const listeners = this.rawListeners(event as never) as unknown as Array<(...args: unknown[]) => unknown>;
    for (const listener of listeners) {
      try {
        const result = Reflect.apply(listener, this, args);
        if (result instanceof Promise) result.catch((error: unknown) => this.listenerThrew(event, error));
      } catch (error) {
        this.listenerThrew(event, error);
      }
    }
    return listeners.length > 0;
  }

  private listenerThrew(event: unknown, error: unknown): void {
    this.listenerErrorLog.error({ err: error, event: String(event) }, "event listener threw; ignored");
  }
}
