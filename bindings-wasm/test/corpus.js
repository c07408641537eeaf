// The shared corpus (tests/vectors/) through the browser package: one harness for Node and
// Chromium. It walks manifest.json and runs every case that applies to this package through
// the one-shot, streaming (odd split points) and ranged paths, on each backend asked for.
// No format logic lives here: every expectation comes from the vector files.
//
//   const report = await runCorpus(isec, load, { backends: ['webcrypto', 'wasm'] })
//   // load(name) resolves to the parsed JSON of tests/vectors/<name>
//   // report: { passed, failed, failures: [string], cases: { file: count }, checks }

import { concat, copyRequest, hex, keyringFrom, objectCase, pattern, toHex } from '../../tests/js/vectors.mjs'

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

export async function runCorpus(isec, load, options = {}) {
  const backends = options.backends ?? isec.backends()
  const report = { passed: 0, failed: 0, failures: [], cases: {}, checks: 0, backends }
  const check = (ok, what) => {
    report.checks++
    if (ok) report.passed++
    else {
      report.failed++
      if (report.failures.length < 200) report.failures.push(what)
    }
  }
  /** The code an async or sync call fails with, or null; a non-isec failure is reported. */
  const codeOf = async (fn) => {
    try {
      await fn()
      return null
    } catch (e) {
      if (typeof e?.code !== 'string' || typeof e?.family !== 'string') return `not an isec error: ${e}`
      return e.code
    }
  }

  const keys = (await load('keys.json')).keys
  /** A keyring from keys.json: with `states`, exactly those kids; without, all decrypt-only. */
  const keyring = (states) => keyringFrom(isec, keys, states)

  // --- manifest -------------------------------------------------------------------------
  const manifest = await load('manifest.json')
  const handled = new Set([
    'keys.json', 'envelope.json', 'nonces.json', 'frames.json', 'ranges.json',
    'multipart.json', 'copy_decisions.json', 'rotation.json', 'legacy.json', 'recipients.json',
  ])
  for (const f of manifest.files) {
    check(handled.has(f.file), `manifest: ${f.file} has no runner in this harness`)
    const doc = await load(f.file)
    if (options.sha256) check((await options.sha256(f.file)) === f.sha256, `manifest: ${f.file} hash`)
    if (Array.isArray(doc.tests)) {
      check(doc.tests.length === f.tests, `manifest: ${f.file} count`)
      check(new Set(doc.tests.map((t) => t.tcId)).size === doc.tests.length, `manifest: ${f.file} tcIds unique`)
    }
  }
  const ran = (file, n) => (report.cases[file] = (report.cases[file] ?? 0) + n)

  // --- envelope.json --------------------------------------------------------------------
  {
    const doc = await load('envelope.json')
    const ring = keyring()
    for (const t of doc.tests) {
      const id = `envelope tc ${t.tcId}`
      let env
      const decoded = await codeOf(() => (env = isec.Envelope.decodeText(t.envelope)))
      if (t.stage === 'decode') {
        check(decoded === t.error, `${id}: decode ${decoded} != ${t.error}`)
        continue
      }
      check(decoded === null, `${id}: decode failed ${decoded}`)
      if (!env) continue
      if (t.inspect) {
        const i = env.inspect()
        const w = t.inspect
        check(i.kid === w.kid && i.frameSize === w.frame_size && i.layout === w.layout, `${id}: inspect`)
        check((i.partSize ?? null) === w.part_size && (i.declaredSize ?? null) === w.declared_size, `${id}: sizes`)
        check(i.wrapAlg === w.wrap_alg && i.envelopeLength === w.envelope_len, `${id}: wrap/len`)
        check(i.version === w.version && i.suite === w.suite, `${id}: version/suite`)
        check(env.toText() === t.envelope, `${id}: re-encode`)
        check(isec.Envelope.decode(env.encode()).equals(env), `${id}: binary round trip`)
      }
      const opened = await codeOf(() => ring.openSync(env))
      check(opened === (t.result === 'valid' ? null : t.error), `${id}: open ${opened} != ${t.error}`)
    }
    const env0 = isec.Envelope.decodeText(doc.tests[0].envelope)
    check(toHex(env0.header()) === doc.key_schedule.header, 'envelope: key schedule header')
    ran('envelope.json', doc.tests.length)
  }

  // --- nonces.json ----------------------------------------------------------------------
  {
    const doc = await load('nonces.json')
    for (const t of doc.tests) {
      const id = `nonce tc ${t.tcId}`
      if (t.result === 'valid') {
        const n = isec.buildNonce(hex(t.prefix), t.index, t.segment_end, t.object_end)
        check(toHex(n) === t.nonce, `${id}: build`)
        const p = isec.parseNonce(hex(t.nonce))
        check(p.index === t.index && p.segmentEnd === t.segment_end && p.objectEnd === t.object_end, `${id}: parse`)
        check(toHex(p.prefix) === t.prefix, `${id}: prefix`)
      } else {
        const c = await codeOf(() => isec.parseNonce(hex(t.nonce)))
        check(c === t.error, `${id}: ${c} != ${t.error}`)
      }
    }
    ran('nonces.json', doc.tests.length)
  }

  // --- ranges.json ----------------------------------------------------------------------
  {
    const doc = await load('ranges.json')
    for (const t of doc.tests) {
      const id = `range tc ${t.tcId}`
      const env = isec.Envelope.decodeText(t.envelope)
      let shape
      const c = await codeOf(() => (shape = isec.Shape.fromCiphertextLength(env, t.ciphertext_len)))
      if (t.result === 'invalid') {
        check(c === t.error, `${id}: ${c} != ${t.error}`)
        continue
      }
      check(c === null, `${id}: shape ${c}`)
      if (!shape) continue
      const p = shape.mapRange(t.range[0], t.range[1])
      const e = t.expect
      check(
        p.ctStart === e.ct_start && p.ctEnd === e.ct_end && p.skip === e.skip && p.len === e.len,
        `${id}: ${JSON.stringify(p)} != ${JSON.stringify(e)}`,
      )
    }
    ran('ranges.json', doc.tests.length)
  }

  // --- frames.json, multipart.json: every backend ---------------------------------------
  const streaming = async (dec, ct, sizes) => {
    const out = []
    let at = 0
    let i = 0
    const code = await codeOf(async () => {
      while (at < ct.length) {
        const end = Math.min(ct.length, at + Math.max(1, sizes[i++ % sizes.length]))
        out.push(await dec.update(ct.subarray(at, end)))
        at = end
      }
      out.push(await dec.final())
    })
    dec.free()
    return { out: concat(out), code }
  }

  for (const file of ['frames.json', 'multipart.json']) {
    const doc = await load(file)
    const ring = keyring()
    for (const backend of backends) {
      const opts = { backend }
      for (const t of doc.tests) {
        const id = `${file} tc ${t.tcId} [${backend}]`
        const { env, key, ct, pt, error, rangedError, released, table, frame } = objectCase(isec, ring, t)

        // One-shot: all or nothing.
        let one
        const c1 = await codeOf(async () => {
          one = table ? await isec.decryptWithTable(key, table, ct, opts) : await isec.decrypt(key, ct, opts)
        })
        check(c1 === error, `${id} one-shot: ${c1} != ${error}`)
        if (error === null && one) check(equal(one, pt), `${id} one-shot plaintext`)

        // Streaming with awkward split points.
        const splits = [[1], [frame - 1], [frame + 1], [frame + 27, frame + 29], [7, 4099, 13, 65536], [Infinity]]
        for (const sizes of splits) {
          let dec
          if (table) {
            let shape
            const c = await codeOf(() => (shape = isec.Shape.fromTable(key, table, ct.length)))
            if (c !== null) {
              check(c === error, `${id} table shape: ${c} != ${error}`)
              continue
            }
            dec = isec.Decryptor.withShape(key, shape, opts)
          } else {
            dec = new isec.Decryptor(key, opts)
          }
          const r = await streaming(dec, ct, sizes)
          check(r.code === error, `${id} streaming ${sizes}: ${r.code} != ${error}`)
          if ((sizes.length === 1 && sizes[0] === 1) || error === null) {
            check(r.out.length === released, `${id} streaming ${sizes}: released ${r.out.length} != ${released}`)
          } else {
            check(r.out.length <= released, `${id} streaming ${sizes}: released ${r.out.length} > ${released}`)
          }
          check(equal(r.out, pt.subarray(0, r.out.length)), `${id} streaming ${sizes}: released plaintext`)
        }

        // Ranged: sub-ranges of valid objects, the whole object through the range path.
        let shape = null
        const cs = await codeOf(() => {
          shape = table ? isec.Shape.fromTable(key, table, ct.length) : isec.Shape.fromCiphertextLength(env, ct.length)
        })
        const l = t.plaintext_len
        if (rangedError === null) {
          check(cs === null, `${id} shape ${cs}`)
          const ranges = [[0, l], [0, 1], [1, Math.floor(l / 2) + 1], [Math.floor(l / 3), l], [Math.max(0, l - 1), l + 5], [l, l + 1], [4096, 8193], [0, Infinity]]
          for (const [a, b] of ranges) {
            const plan = shape.mapRange(a, b)
            const fetched = ct.subarray(plan.ctStart, plan.ctEnd)
            let got
            const c = await codeOf(async () => (got = await isec.decryptRange(key, shape, a, b, fetched, opts)))
            const lo = Math.min(a, l)
            const hi = Math.max(lo, Math.min(b, l))
            check(c === null && got && equal(got, pt.subarray(lo, hi)), `${id} range ${a}..${b}: ${c}`)
            // The same range streamed through a ranged DecryptStream-style context.
            const r = await streaming(isec.Decryptor.forRange(key, shape, a, b, opts), fetched, [frame + 3])
            check(r.code === null && equal(r.out, pt.subarray(lo, hi)), `${id} ranged stream ${a}..${b}: ${r.code}`)
          }
        } else {
          for (const sizes of [[1], [frame + 1], [Infinity]]) {
            let code = cs
            if (cs === null) {
              const r = await streaming(isec.Decryptor.withShape(key, shape, opts), ct, sizes)
              check(r.out.length <= Math.max(released, l), `${id} ranged ${sizes}: released`)
              check(equal(r.out, pt.subarray(0, r.out.length)), `${id} ranged ${sizes}: released plaintext`)
              code = r.code
            }
            check(code === rangedError, `${id} ranged ${sizes}: ${code} != ${rangedError}`)
          }
        }
      }
      ran(file, doc.tests.length)
    }
  }

  // --- copy_decisions.json --------------------------------------------------------------
  {
    const doc = await load('copy_decisions.json')
    for (const t of doc.tests) {
      const id = `copy tc ${t.tcId}`
      const req = copyRequest(t.request)
      let p
      const c = await codeOf(() => (p = isec.decideCopy(req, keyring(t.keys))))
      if (t.result === 'invalid') {
        check(c === t.error, `${id}: ${c} != ${t.error}`)
        continue
      }
      check(c === null, `${id}: ${c}`)
      if (!p) continue
      const e = t.expect
      check(p.action === e.action, `${id}: action ${p.action} != ${e.action}`)
      check(JSON.stringify(p.metadata) === JSON.stringify(e.metadata), `${id}: metadata`)
      check(JSON.stringify(p.ranges) === JSON.stringify(e.ranges), `${id}: ranges`)
      check(p.copySidecar === e.copy_sidecar && p.rewrapped === e.rewrapped, `${id}: sidecar/rewrapped`)
      check((p.reason ?? null) === e.reason, `${id}: reason`)
      check(p.requests === e.requests && p.clientBytes === e.client_bytes, `${id}: requests/bytes`)
    }
    ran('copy_decisions.json', doc.tests.length)
  }

  // --- rotation.json --------------------------------------------------------------------
  {
    const doc = await load('rotation.json')
    for (const t of doc.tests) {
      const id = `rotation tc ${t.tcId}`
      const ring = keyring(t.keys)
      ring.setMinVersion(t.min_version)
      const env = isec.Envelope.decodeText(t.envelope)
      if (t.operation === 'open') {
        const c = await codeOf(() => ring.open(env))
        check(c === (t.result === 'valid' ? null : t.error), `${id}: open ${c} != ${t.error}`)
      } else if (t.operation === 'rewrap') {
        let e
        const c = await codeOf(async () => (e = await ring.rewrap(env)))
        if (t.result === 'valid') {
          check(c === null && e.toText() === t.expect.envelope && e.kid === t.expect.kid, `${id}: rewrap ${c}`)
        } else {
          check(c === t.error, `${id}: rewrap ${c} != ${t.error}`)
        }
      } else {
        check(false, `${id}: unknown operation ${t.operation}`)
      }
    }
    ran('rotation.json', doc.tests.length)
  }

  // --- legacy.json (wasm backend: core reads legacy seals itself) -----------------------
  {
    const doc = await load('legacy.json')
    for (const t of doc.tests) {
      const id = `legacy tc ${t.tcId}`
      const ct = hex(t.ciphertext)
      const pt = pattern(t.plaintext_len)
      let got
      const c = await codeOf(() => {
        const meta = isec.LegacyMetadata.fromPairs(t.metadata)
        const obj = isec.LegacyObject.create(meta, ct.length)
        const key = isec.LegacyKey.fromSecretString(t.legacy_secret, obj.wrappedDekB64)
        got = isec.legacyDecrypt(key, obj, ct)
        // The same through the streaming reader, one odd split.
        const d = new isec.LegacyDecryptor(key, obj)
        const parts = []
        for (let at = 0; at < ct.length; at += 13) parts.push(d.update(ct.subarray(at, at + 13)))
        parts.push(d.final())
        if (!equal(concat(parts), got)) throw new Error('streaming legacy differs')
      })
      if (t.result === 'valid') check(c === null && got && equal(got, pt), `${id}: ${c}`)
      else check(c === t.error, `${id}: ${c} != ${t.error}`)
    }
    ran('legacy.json', doc.tests.length)
  }

  // --- recipients.json: keyrings from keyring files, opened sync and async --------------
  {
    const doc = await load('recipients.json')
    const fromFile = (k) => isec.Keyring.fromFileText(JSON.stringify(k))
    for (const t of doc.tests) {
      const id = `recipients tc ${t.tcId}`
      let env
      const decoded = await codeOf(() => (env = isec.Envelope.decodeText(t.envelope)))
      if (t.stage === 'decode') {
        check(decoded === t.error, `${id}: decode ${decoded} != ${t.error}`)
        continue
      }
      check(decoded === null, `${id}: decode failed ${decoded}`)
      if (!env) continue
      if (t.inspect) {
        const i = env.inspect()
        check(i.kid === t.inspect.kid && i.wrapAlg === t.inspect.wrap_alg, `${id}: inspect kid/wrapAlg`)
        check(i.envelopeLength === t.inspect.envelope_len && i.layout === t.inspect.layout, `${id}: inspect len/layout`)
      }
      let ring
      const built = await codeOf(() => (ring = fromFile(t.keyring)))
      check(built === null, `${id}: keyring file ${built}`)
      if (!ring) continue
      if (t.rewrap_then_open_with) {
        const c = await codeOf(async () => (env = await ring.rewrap(env)))
        check(c === null && env.wrapAlg === t.rewrapped_wrap_alg, `${id}: rewrap ${c} ${env.wrapAlg}`)
        ring = fromFile(t.rewrap_then_open_with)
      }
      const want = t.result === 'valid' ? null : t.error
      let key
      const cs = await codeOf(() => (key = ring.openSync(env)))
      check(cs === want, `${id}: openSync ${cs} != ${want}`)
      const ca = await codeOf(async () => (key = await ring.open(env)))
      check(ca === want, `${id}: open ${ca} != ${want}`)
      if (want !== null || !key) continue
      const ct = hex(t.ciphertext)
      const pt = pattern(t.plaintext_len)
      for (const backend of backends) {
        let got
        const c = await codeOf(async () => (got = await isec.decrypt(key, ct, { backend })))
        check(c === null && got && equal(got, pt), `${id} [${backend}]: decrypt ${c}`)
      }
    }
    ran('recipients.json', doc.tests.length)
  }

  return report
}
