// `copySteps` against tests/vectors/copy_decisions.json: every valid case's plan, as
// `decideCopy` makes it, turned into the S3 requests the vector records (`expect.steps` to
// another bucket and key, `expect.steps_in_place` onto the source itself; SPEC.md §12.2).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isec, load, keyringWith, codeOf, copyRequest } from './helpers.mjs'

const doc = load('copy_decisions.json')
const SRC = { bucket: 'src-bucket', key: 'photos/a.jpg' }
const DST = { bucket: 'dst-bucket', key: 'backup/a.jpg' }

function planFor(t) {
  return isec.decideCopy(copyRequest(t.request), keyringWith(t.keys))
}

/** A request in the vector's form (objects as [bucket, key], fields the op has). */
function asVector(q) {
  const o = (x) => [x.bucket, x.key]
  const v = { op: q.op }
  if (q.source) v.source = o(q.source)
  if (q.dest) v.dest = o(q.dest)
  if (q.object) v.object = o(q.object)
  if (q.part !== undefined) v.part = q.part
  if (q.range !== undefined) v.range = q.range
  if (q.parts !== undefined) v.parts = q.parts
  if (q.ifMatch !== undefined) v.if_match = q.ifMatch
  if (q.op === 'CopyObject') {
    v.directive = q.directive
    v.metadata = q.metadata ?? null
  } else if (q.metadata !== undefined) v.metadata = q.metadata
  if (q.headers !== undefined) v.headers = q.headers
  if (q.op === 'VerifyIsec') {
    v.kid = q.kid
    v.plaintext_len = q.plaintextLength ?? null
  }
  if (q.undo !== undefined) v.undo = q.undo.map(asVector)
  return v
}

const valid = doc.tests.filter((t) => t.result === 'valid' && t.expect.steps)

test('copySteps: the requests of every valid copy_decisions.json case, to another object and in place', () => {
  assert.ok(valid.length >= 10, 'the vector records steps')
  const ops = new Set()
  for (const t of valid) {
    const id = `tc ${t.tcId}`
    const plan = planFor(t)
    const meta = t.request.source_metadata
    const steps = isec.copySteps(plan, SRC, meta, DST)
    const inPlace = isec.copySteps(plan, SRC, meta, SRC, { newHeaders: false })
    // The fields executors branch on, then the whole request.
    const brief = (s) => s.map((q) => [q.op, q.directive ?? null, q.ifMatch ?? null, q.headers ?? null, q.undo.map((u) => u.op)])
    const briefV = (s) =>
      s.map((q) => [q.op, q.directive ?? null, q.if_match ?? null, q.headers ?? null, q.undo.map((u) => u.op)])
    assert.deepEqual(brief(steps), briefV(t.expect.steps), id)
    assert.deepEqual(brief(inPlace), briefV(t.expect.steps_in_place), `${id} in place`)
    assert.deepEqual(steps.map(asVector), t.expect.steps, id)
    assert.deepEqual(inPlace.map(asVector), t.expect.steps_in_place, `${id} in place`)
    for (const q of steps) ops.add(q.op)
  }
  for (const op of ['CopyObject', 'CreateMultipartUpload', 'UploadPartCopy', 'CompleteMultipartUpload', 'Reencrypt']) {
    assert.ok(ops.has(op), `the vector exercises ${op}`)
  }
})

test('copySteps: new system headers make a COPY a REPLACE that carries them, in place too', () => {
  const t = valid.find((x) => x.expect.action === 'native' && !x.request.source_sidecar)
  const plan = planFor(t)
  for (const dest of [DST, SRC]) {
    const [q] = isec.copySteps(plan, SRC, t.request.source_metadata, dest, { newHeaders: true })
    assert.deepEqual([q.op, q.directive, q.headers, q.ifMatch], ['CopyObject', 'REPLACE', 'carried', true])
    assert.deepEqual(q.metadata, t.request.source_metadata)
  }
})

test('copySteps refuses a plan it does not know', () => {
  const t = valid[0]
  const plan = { ...planFor(t), action: 'teleport' }
  assert.equal(codeOf(() => isec.copySteps(plan, SRC, {}, DST)), 'invalid_parameter')
  assert.equal(codeOf(() => isec.copySteps({ ...planFor(t), sidecar: 'other' }, SRC, {}, DST)), 'invalid_parameter')
})

test('migrateSteps: an in-place migration as the vector records it (read back, then only the object-keyed sidecar deleted)', () => {
  const cases = valid.filter((t) => t.expect.migrations)
  assert.ok(cases.length >= 1, 'the vector records migrations')
  let deleted = 0
  let kept = 0
  for (const t of cases) {
    const plan = planFor(t)
    for (const [k, m] of t.expect.migrations.entries()) {
      const id = `tc ${t.tcId} migration ${k}`
      const got = isec.migrateSteps(plan, SRC, t.request.source_metadata, m.sidecar, m.active_kid, m.plaintext_len ?? undefined)
      assert.deepEqual(got.steps.map(asVector), m.steps, id)
      assert.equal(got.sidecarDeleted ?? null, m.sidecar_deleted, id)
      assert.equal(got.sidecarKept ?? null, m.sidecar_kept, id)
      if (m.sidecar_deleted) deleted += 1
      if (m.sidecar_kept) kept += 1
    }
  }
  assert.ok(deleted >= 1 && kept >= 1, 'both sidecar outcomes are exercised')
  const native = valid.find((x) => x.expect.action === 'native')
  assert.equal(codeOf(() => isec.migrateSteps(planFor(native), SRC, {}, null, 'k')), 'invalid_state')
})

test('WholeRead: the GETs of a whole read (SPEC.md §12.4) are core\'s', () => {
  const seg = 8 * 1048576 + 3584
  const plan = new isec.WholeRead(seg, `bytes 0-${seg - 1}/${3 * seg + 38}`, 8 * 1048576)
  assert.deepEqual([plan.storedLength, plan.firstLength, plan.step], [3 * seg + 38, seg, seg])
  assert.deepEqual(plan.ranges(), [[seg, 2 * seg], [2 * seg, 3 * seg], [3 * seg, 3 * seg + 38]])
  const single = new isec.WholeRead(20 * 1048576, null, 8 * 1048576)
  assert.deepEqual(single.ranges(), [[8 * 1048576, 16 * 1048576], [16 * 1048576, 20 * 1048576]])
  assert.deepEqual(new isec.WholeRead(0, null, 8 * 1048576).ranges(), [])
  for (const [len, cr, code] of [
    [10, 'bytes 2-11/12', 'invalid_parameter'],
    [10, 'bytes 0-9/*', 'invalid_parameter'],
    [9, 'bytes 0-9/12', 'truncated'],
    [11, 'bytes 0-9/12', 'trailing_data'],
  ]) {
    assert.equal(codeOf(() => new isec.WholeRead(len, cr, 8 * 1048576)), code, cr)
  }
  assert.deepEqual([isec.FIRST_PART, isec.EMPTY_OBJECT_STATUS], [1, 416])
})
