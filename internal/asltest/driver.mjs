// Runs executions of a state machine definition in aws-local-stepfunctions. Driven by asltest (Go): the request
// comes as JSON on stdin, every Task state calls back the Go test over loopback HTTP, and the outcome with the event
// log goes to stdout as one JSON document.
//
// The interpreter runs a Map inline only: it has no ItemReader, no ResultWriter, no tolerated failures, and a failed
// item fails the Map. A distributed Map (ItemProcessor.ProcessorConfig.Mode DISTRIBUTED) is therefore run here, from
// its definition: the state becomes a Task of the same name and transitions, and this driver reads the items with the
// ItemReader's resource (bound in Go), shapes each with the ItemSelector, runs the ItemProcessor as one child
// execution per item (at most MaxConcurrency at once), applies ToleratedFailureCount/Percentage and writes the
// results with the ResultWriter's resource, as Step Functions does:
// https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const req = JSON.parse(readFileSync(0, 'utf8'));

// The interpreter times a Task's TimeoutSeconds (60 by default) on the wall clock, around the Go function bound to
// it: under machine load a function that is fast in AWS could time out here, and a distributed Map (run as a Task,
// below) would time out after 60 s of children. Every Task state's timeout is therefore lifted (to the longest a
// timer can wait); the Go side bounds the whole run, and a test simulates a timeout by failing a task with
// States.Timeout.
const noTimeout = 2147483; // seconds: setTimeout's longest delay is 2^31-1 ms
function liftTimeouts(def) {
  for (const st of Object.values(def.States ?? {})) {
    if (st.Type === 'Task') {
      delete st.TimeoutSecondsPath;
      delete st.HeartbeatSeconds;
      delete st.HeartbeatSecondsPath;
      st.TimeoutSeconds = noTimeout;
    }
    for (const sub of [st.ItemProcessor, st.Iterator, ...(st.Branches ?? [])]) {
      if (sub) liftTimeouts(sub);
    }
  }
}
liftTimeouts(req.definition);
const { StateMachine, ExecutionError, ExecutionTimeoutError } = await import(pathToFileURL(req.module).href);

const account = 'arn:aws:states:us-east-1:123456789012';
const machineName = req.name ?? 'asltest';

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

function namedError(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

async function callGo(path, body) {
  const res = await fetch(`${req.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? null),
  });
  const answer = await res.json();
  if (res.status !== 200) throw namedError(answer.error, answer.cause);
  return answer.output;
}

const isDistributed = (st) => st.Type === 'Map' && st.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED';

const taskResourceLocalHandlers = {};
for (const name of req.tasks) {
  taskResourceLocalHandlers[name] = (input) => callGo(`/task?state=${encodeURIComponent(name)}`, input);
}
const overrides = { taskResourceLocalHandlers };
if (req.retryIntervalMs !== null) {
  overrides.retryIntervalOverrides = Object.fromEntries(statesWhere(req.definition, (st) => 'Retry' in st).map((s) => [s, req.retryIntervalMs]));
}
if (req.waitMs !== null) {
  const waits = statesWhere(req.definition, (st) => st.Type === 'Wait');
  overrides.waitTimeOverrides = Object.fromEntries(waits.map((s) => [s, req.waitMs]));
}

// evaluate applies a payload template (Parameters, ItemSelector, ItemReader/ResultWriter Parameters) with the
// interpreter's own evaluator: a Pass state with the template as Parameters.
async function evaluate(template, input, context) {
  if (template === undefined) return undefined;
  const sm = new StateMachine({ StartAt: 'T', States: { T: { Type: 'Pass', Parameters: template, End: true } } }, {
    validationOptions: { noValidate: true },
  });
  try {
    return await sm.run(input, { context }).result;
  } catch (e) {
    throw namedError('States.Runtime', String(e.cause?.message ?? e.message));
  }
}

// One distributed Map run: its own id, items read, child executions, results written.
async function runDistributedMap(st, stateName, input, context, children) {
  const mapRun = `${account}:mapRun:${machineName}/${st.Label ?? stateName}:${randomUUID()}`;
  let items;
  if (st.ItemReader) {
    const params = await evaluate(st.ItemReader.Parameters ?? {}, input, context);
    let body;
    try {
      body = await callGo(`/resource?arn=${encodeURIComponent(st.ItemReader.Resource)}`, params);
    } catch (e) {
      throw namedError('States.ItemReaderFailed', `${e.name}: ${e.message}`);
    }
    if ((st.ItemReader.ReaderConfig?.InputType ?? 'JSON') !== 'JSON') {
      throw namedError('States.ItemReaderFailed', `asltest reads only JSON items, not ${st.ItemReader.ReaderConfig.InputType}`);
    }
    try {
      items = JSON.parse(typeof body === 'string' ? body : body.Body);
    } catch (e) {
      throw namedError('States.ItemReaderFailed', `items are not JSON: ${e.message}`);
    }
    if (!Array.isArray(items)) throw namedError('States.ItemReaderFailed', 'the items object is not a JSON array');
    const max = st.ItemReader.ReaderConfig?.MaxItems;
    if (max) items = items.slice(0, max);
  } else {
    items = (await evaluate({ 'items.$': st.ItemsPath ?? '$' }, input, context)).items;
    if (!Array.isArray(items)) throw namedError('States.Runtime', 'the Map input is not an array');
  }
  const { ProcessorConfig, ...processor } = st.ItemProcessor;
  const childMachine = new StateMachine(processor, { validationOptions: { noValidate: true } });
  const records = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const itemContext = { ...context, Map: { Item: { Index: i, Value: items[i] } } };
      const childInput = st.ItemSelector ? await evaluate(st.ItemSelector, input, itemContext) : items[i];
      const executionArn = `${account}:execution:${machineName}/${st.Label ?? stateName}:${randomUUID()}`;
      const out = await runOne(childMachine, childInput, { Execution: { Id: executionArn, Name: executionArn.split(':').pop() } });
      records[i] = { ExecutionArn: executionArn, Input: JSON.stringify(childInput), Status: out.status, Output: out.output, Error: out.error, Cause: out.cause };
      children.push({ ...out, index: i, state: stateName, mapRun, input: childInput });
    }
  };
  const concurrency = st.MaxConcurrency > 0 ? st.MaxConcurrency : 1000;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));

  const failed = records.filter((r) => r.Status !== 'SUCCEEDED');
  const succeeded = records.filter((r) => r.Status === 'SUCCEEDED');
  let output = records.map((r) => (r.Status === 'SUCCEEDED' ? r.Output : { Error: r.Error, Cause: r.Cause }));
  if (st.ResultWriter) {
    const params = await evaluate(st.ResultWriter.Parameters ?? {}, input, context);
    const prefix = `${params.Prefix ? params.Prefix.replace(/\/$/, '') + '/' : ''}${mapRun.split(':').pop()}/`;
    const files = [];
    const put = async (name, body) => {
      try {
        await callGo(`/resource?arn=${encodeURIComponent(st.ResultWriter.Resource)}`, { Bucket: params.Bucket, Key: prefix + name, Body: JSON.stringify(body) });
      } catch (e) {
        throw namedError('States.ResultWriterFailed', `${e.name}: ${e.message}`);
      }
    };
    for (const [status, list] of [['SUCCEEDED', succeeded], ['FAILED', failed]]) {
      if (list.length === 0) continue;
      const name = `${status}_0.json`;
      await put(name, list.map((r) => ({ ...r, Output: r.Output === undefined ? undefined : JSON.stringify(r.Output) })));
      files.push({ Key: prefix + name, Size: list.length });
    }
    await put('manifest.json', { DestinationBucket: params.Bucket, MapRunArn: mapRun, ResultFiles: { SUCCEEDED: files.filter((f) => f.Key.includes('SUCCEEDED')), FAILED: files.filter((f) => f.Key.includes('FAILED')) } });
    output = { MapRunArn: mapRun, ResultWriterDetails: { Bucket: params.Bucket, Key: prefix + 'manifest.json' } };
  }
  // A failure beyond the tolerated count or percentage fails the Map run (both default to 0).
  const tolCount = st.ToleratedFailureCountPath ? (await evaluate({ 'n.$': st.ToleratedFailureCountPath }, input, context)).n : st.ToleratedFailureCount;
  const tolPercent = st.ToleratedFailurePercentagePath ? (await evaluate({ 'n.$': st.ToleratedFailurePercentagePath }, input, context)).n : st.ToleratedFailurePercentage;
  if (failed.length > 0) {
    const overCount = tolCount === undefined ? tolPercent === undefined : failed.length > tolCount;
    const overPercent = tolPercent === undefined ? tolCount === undefined : (100 * failed.length) / items.length > tolPercent;
    if (overCount || overPercent) {
      throw namedError('States.ExceedToleratedFailureThreshold', `${failed.length} of ${items.length} items failed in map run ${mapRun}`);
    }
  }
  return output;
}

// The definition the interpreter runs: each distributed Map is a Task of the same name and transitions, which this
// driver carries out.
function withDistributedMaps(def, context, children) {
  const states = {};
  for (const [name, st] of Object.entries(def.States)) {
    if (!isDistributed(st)) {
      states[name] = st;
      continue;
    }
    const task = { Type: 'Task', Resource: `${account}:asltest:distributedMap:${name}`, TimeoutSeconds: noTimeout };
    for (const k of ['Comment', 'InputPath', 'OutputPath', 'ResultPath', 'ResultSelector', 'Retry', 'Catch', 'Next', 'End']) {
      if (k in st) task[k] = st[k];
    }
    states[name] = task;
    overrides.taskResourceLocalHandlers[name] = (input) => runDistributedMap(st, name, input, context.current, children);
  }
  return { ...def, States: states };
}

async function runOne(sm, input, context) {
  const exec = sm.run(input, { overrides, context });
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
const current = { current: undefined };
const children = [];
const sm = new StateMachine(withDistributedMaps(req.definition, current, children), { validationOptions: { checkArn: false } });
const results = [];
for (const input of req.inputs) {
  const id = `${account}:execution:${machineName}:${randomUUID()}`;
  current.current = { ...(req.context ?? {}), Execution: { Id: id, Name: id.split(':').pop(), ...(req.context?.Execution ?? {}) } };
  children.length = 0;
  const out = await runOne(sm, input, current.current);
  results.push({ ...out, children: [...children] });
}
process.stdout.write(JSON.stringify(results));
