// Runs one execution of a state machine definition in aws-local-stepfunctions. Driven by asltest (Go): the request
// comes as JSON on stdin, every Task state calls back the Go test over loopback HTTP, and the outcome with the event
// log goes to stdout as one JSON document.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const req = JSON.parse(readFileSync(0, 'utf8'));
const { StateMachine, ExecutionError, ExecutionTimeoutError } = await import(pathToFileURL(req.module).href);

// The names of the states that match, Map item processors and Parallel branches included.
function statesWhere(def, match, out = []) {
  for (const [name, st] of Object.entries(def.States ?? {})) {
    if (match(st)) out.push(name);
    for (const sub of [st.ItemProcessor, st.Iterator, ...(st.Branches ?? [])]) {
      if (sub) statesWhere(sub, match, out);
    }
  }
  return out;
}

const taskResourceLocalHandlers = {};
for (const name of req.tasks) {
  taskResourceLocalHandlers[name] = async (input) => {
    const res = await fetch(`${req.url}/task?state=${encodeURIComponent(name)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input ?? null),
    });
    const body = await res.json();
    if (res.status !== 200) {
      const err = new Error(body.cause);
      err.name = body.error;
      throw err;
    }
    return body.output;
  };
}
const overrides = { taskResourceLocalHandlers };
if (req.retryIntervalMs !== null) {
  overrides.retryIntervalOverrides = Object.fromEntries(statesWhere(req.definition, (st) => 'Retry' in st).map((s) => [s, req.retryIntervalMs]));
}
if (req.waitMs !== null) {
  const waits = statesWhere(req.definition, (st) => st.Type === 'Wait');
  overrides.waitTimeOverrides = Object.fromEntries(waits.map((s) => [s, req.waitMs]));
}

const sm = new StateMachine(req.definition, { validationOptions: { checkArn: false } });

async function runOne(input) {
  const exec = sm.run(input, { overrides, context: req.context ?? undefined });
  const events = [];
  const collecting = (async () => {
    for await (const ev of exec.eventLogs) events.push(ev);
  })();
  let out;
  try {
    out = { status: 'SUCCEEDED', output: (await exec.result) ?? null };
  } catch (e) {
    if (e instanceof ExecutionError) {
      out = { status: 'FAILED', error: e.cause?.name ?? 'Unknown', cause: String(e.cause?.message ?? '') };
    } else if (e instanceof ExecutionTimeoutError) {
      out = { status: 'TIMED_OUT', error: 'States.Timeout', cause: '' };
    } else {
      throw e;
    }
  }
  await collecting;
  return { ...out, events };
}

// One execution after the other, in the order given.
const results = [];
for (const input of req.inputs) results.push(await runOne(input));
process.stdout.write(JSON.stringify(results));
