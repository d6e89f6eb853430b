import fc from "fast-check";

/** `fc.scheduledModelRun`, returning the model and real system `init` made for the run. */
export async function scheduledModelRun<Model extends object, Real>(
  s: fc.Scheduler,
  init: () => { model: Model; real: Real },
  cmds: Iterable<fc.AsyncCommand<Model, Real>>,
): Promise<{ model: Model; real: Real }> {
  let state: { model: Model; real: Real } | undefined;
  await fc.scheduledModelRun(
    s,
    () => {
      state = init();
      return state;
    },
    cmds,
  );
  return state as { model: Model; real: Real };
}
