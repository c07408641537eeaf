// The package as npm users get it: `npm pack` of @isec/node and of its platform packages
// (npm/<platform>/, each staged by scripts/stage-platform.mjs, the host's with the binary
// built here and the others with it as a stand-in for the layout check), installed from the
// tarballs into a fresh consumer project. There every export imports by name from ESM (the
// names come from the package itself, so exports added later are covered), the
// declarations type-check under `tsc --strict` and declare exactly the names that import,
// and a platform without a binary gets ERR_ISEC_NO_BINARY from the real loader.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { stagePlatform } from '../scripts/stage-platform.mjs'

const require = createRequire(import.meta.url)
const execFileAsync = promisify(execFile)
const PKG = join(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8'))
const { platformName, detectLibc, noBinaryError, prebuiltPlatforms } = require('../lib/platform.js')
const host = platformName({ platform: process.platform, arch: process.arch, libc: detectLibc() })
const hostBinary = join(PKG, `isec.${host}.node`)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const npmEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }

let work, consumer, mainPack
const platformPacks = {}

/** `npm pack --json` of `dir` into `work`; resolves to its report (files, filename). */
async function pack(dir, dryRun = false) {
  const args = ['pack', '--json', '--pack-destination', work]
  if (dryRun) args.push('--dry-run')
  const { stdout } = await execFileAsync(npm, args, { cwd: dir, env: npmEnv, encoding: 'utf8' })
  return JSON.parse(stdout)[0]
}

/** Runs node in the consumer project; returns { status, stdout, stderr }. */
function nodeIn(args, env = {}) {
  return spawnSync(process.execPath, args, { cwd: consumer, encoding: 'utf8', env: { ...process.env, ...env } })
}

before(async () => {
  assert.ok(existsSync(hostBinary), `${hostBinary} missing: build first (npx napi build --platform --release)`)
  work = mkdtempSync(join(tmpdir(), 'isec-node-pack-'))
  // The packs run concurrently: each is mostly npm's start-up. Only the host's platform
  // package is written (and installed below); the others are dry runs.
  const platforms = readdirSync(join(PKG, 'npm'))
  const packs = await Promise.all([
    pack(PKG),
    ...platforms.map((dir) => {
      const staged = stagePlatform(dir, hostBinary, join(work, 'stage'))
      return pack(staged, dir !== host).then((r) => ({ ...r, dir: staged }))
    }),
  ])
  mainPack = packs[0]
  platforms.forEach((dir, i) => (platformPacks[dir] = packs[i + 1]))
  consumer = join(work, 'consumer')
  execFileSync('mkdir', ['-p', consumer])
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  const tarballs = [mainPack.filename, platformPacks[host].filename].map((f) => join(work, f))
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--no-progress', ...tarballs], {
    cwd: consumer,
    env: npmEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
})

after(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

test('the tarball holds the code, declarations, README and license files, and no tests or binaries', () => {
  const files = mainPack.files.map((f) => f.path).sort()
  for (const f of ['LICENSE-MIT', 'LICENSE-APACHE', 'README.md', 'package.json', 'index.js', 'index.d.ts']) {
    assert.ok(files.includes(f), `${f} not in the tarball: ${files}`)
  }
  for (const f of ['lib/index.js', 'lib/index.d.ts', 'lib/s3.js', 'lib/s3.d.ts', 'lib/native.js', 'lib/platform.js']) {
    assert.ok(files.includes(f), `${f} not in the tarball`)
  }
  const stray = files.filter((f) => /(^|\/)test\/|\.test\.|\.node$|^src\/|^npm\/|^scripts\/|Cargo|\.rs$/.test(f))
  assert.deepEqual(stray, [], 'files that do not belong in the tarball')
  assert.match(readFileSync(join(PKG, 'LICENSE-MIT'), 'utf8'), /Copyright \(c\) 2026 The isec authors/)
  assert.match(readFileSync(join(PKG, 'LICENSE-APACHE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/)
})

test('package.json carries what the registry shows and publishes publicly', () => {
  assert.equal(pkg.license, 'MIT OR Apache-2.0')
  assert.deepEqual(pkg.repository, { type: 'git', url: 'git+https://github.com/isec-rs/isec.git', directory: 'bindings-node' })
  assert.match(pkg.homepage, /^https:\/\/github\.com\/isec-rs\/isec/)
  assert.deepEqual(pkg.publishConfig, { access: 'public' })
  assert.equal(pkg.private, undefined)
})

test('one platform package per napi target, each an optional dependency of the same version', () => {
  const dirs = readdirSync(join(PKG, 'npm')).sort()
  const wanted = Object.keys(pkg.optionalDependencies).map((n) => n.slice('@isec/node-'.length)).sort()
  assert.deepEqual(dirs, wanted)
  assert.deepEqual(prebuiltPlatforms().sort(), wanted)
  assert.equal(pkg.napi.targets.length, dirs.length)
  for (const v of Object.values(pkg.optionalDependencies)) assert.equal(v, pkg.version)
  const cpu = { x64: 'x64', arm64: 'arm64' }
  for (const dir of dirs) {
    const [os, arch, abi] = dir.split('-')
    const p = JSON.parse(readFileSync(join(platformPacks[dir].dir, 'package.json'), 'utf8'))
    assert.equal(p.name, `@isec/node-${dir}`)
    assert.equal(p.version, pkg.version)
    assert.deepEqual(p.os, [os])
    assert.deepEqual(p.cpu, [cpu[arch]])
    assert.deepEqual(p.libc, [abi === 'musl' ? 'musl' : 'glibc'])
    assert.equal(p.main, `isec.${dir}.node`)
    assert.equal(p.license, pkg.license)
    assert.deepEqual(p.publishConfig, { access: 'public' })
    const files = platformPacks[dir].files.map((f) => f.path).sort()
    assert.deepEqual(files, ['LICENSE-APACHE', 'LICENSE-MIT', 'README.md', `isec.${dir}.node`, 'package.json'])
  }
})

test('the installed package loads its binary from the platform package', () => {
  const own = readdirSync(join(consumer, 'node_modules/@isec/node')).filter((f) => f.endsWith('.node'))
  assert.deepEqual(own, [])
  assert.ok(existsSync(join(consumer, 'node_modules/@isec', `node-${host}`, `isec.${host}.node`)))
})

/** Every name `require(spec)` has in the consumer project. */
function runtimeNames(spec) {
  const r = nodeIn(['-e', `process.stdout.write(JSON.stringify(Object.keys(require(${JSON.stringify(spec)}))))`])
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('every export imports by name from ESM (@isec/node and @isec/node/s3), and works', () => {
  const main = runtimeNames('@isec/node')
  const s3 = runtimeNames('@isec/node/s3')
  // The names a reader hit first; the lists are the package's own, so they grow with it.
  for (const n of ['shapeFor', 'Envelope', 'encryptSync', 'decryptSync', 'objectMetadata', 'classifyMetadata', 'EncryptStream', 'Keyring', 'encrypt', 'CancelToken']) {
    assert.ok(main.includes(n), `${n} missing from the package`)
  }
  assert.ok(main.length >= 55, `only ${main.length} exports`)
  assert.deepEqual(s3.sort(), ['IsecS3', 'S3_MIN_PART'])
  const src = `
import { createRequire } from 'node:module'
import assert from 'node:assert/strict'
import { ${main.join(', ')} } from '@isec/node'
import { ${s3.join(', ')} } from '@isec/node/s3'
import * as ns from '@isec/node'
const require = createRequire(import.meta.url)
const cjs = require('@isec/node')
const got = { ${main.join(', ')} }
for (const [k, v] of Object.entries(got)) assert.equal(v, cjs[k], k)
assert.equal(IsecS3, require('@isec/node/s3').IsecS3)
assert.deepEqual(Object.keys(ns).filter((k) => k !== 'default').sort(), Object.keys(cjs).sort())
const ring = new Keyring()
ring.addKek('k1', new Uint8Array(32).fill(7), 'active')
const { envelope, key } = ring.createEnvelopeSync()
const ct = encryptSync(key, Buffer.from('hello from ESM'))
const meta = Object.fromEntries(objectMetadata({}, envelope))
const env = classifyMetadata(meta).envelope
assert.ok(env instanceof Envelope)
assert.equal(Buffer.from(decryptSync(await ring.open(env), ct)).toString(), 'hello from ESM')
console.log('ok', Object.keys(got).length)
`
  writeFileSync(join(consumer, 'names.mjs'), src)
  const r = nodeIn(['names.mjs'])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout.trim(), `ok ${main.length}`)
})

test('the declarations type-check every name under tsc --strict, and declare no value that does not import', () => {
  const main = runtimeNames('@isec/node')
  const s3 = runtimeNames('@isec/node/s3')
  writeFileSync(
    join(consumer, 'names.ts'),
    `import { ${main.join(', ')} } from '@isec/node'\n` +
      `import { ${s3.join(', ')} } from '@isec/node/s3'\n` +
      `const ring: Keyring = new Keyring()\nconst ct: Buffer = encryptSync(ring.createEnvelopeSync().key, Buffer.from('x'))\n` +
      `export const all = [${[...main, ...s3].join(', ')}, ct]\n`,
  )
  // @types/node and the optional @aws-sdk/client-s3 peer (types only) come from this
  // package's devDependencies, as a consumer's own would.
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        types: ['node'],
        typeRoots: [join(PKG, 'node_modules/@types')],
        paths: { '@aws-sdk/client-s3': [join(PKG, 'node_modules/@aws-sdk/client-s3')] },
      },
      files: ['names.ts'],
    }),
  )
  // One compiler run (the TypeScript API, as tsc -p would): its diagnostics, then the other
  // direction, each value the declarations export is one that imports.
  const ts = require('typescript')
  const config = ts.parseJsonConfigFileContent(JSON.parse(readFileSync(join(consumer, 'tsconfig.json'), 'utf8')), ts.sys, consumer)
  const program = ts.createProgram(config.fileNames, config.options)
  const diagnostics = ts.getPreEmitDiagnostics(program)
  const fmt = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => consumer, getNewLine: () => '\n' }
  assert.equal(diagnostics.length, 0, ts.formatDiagnostics(diagnostics, fmt))
  assert.equal(config.options.strict, true)
  const checker = program.getTypeChecker()
  const file = program.getSourceFile(join(consumer, 'names.ts'))
  const declared = {}
  for (const st of file.statements.filter(ts.isImportDeclaration)) {
    const mod = checker.getSymbolAtLocation(st.moduleSpecifier)
    declared[st.moduleSpecifier.text] = checker
      .getExportsOfModule(mod)
      .filter((s) => {
        const t = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
        return (t.flags & ts.SymbolFlags.Value) !== 0
      })
      .map((s) => s.name)
      .sort()
  }
  assert.deepEqual(declared['@isec/node'], [...main].sort(), 'declared values vs. exports')
  assert.deepEqual(declared['@isec/node/s3'], [...s3].sort())
})

test('a platform without a binary gets ERR_ISEC_NO_BINARY naming it and the prebuilt ones', () => {
  // The real loader on a platform it has no binary for: process.arch is replaced before
  // the package loads (riscv64: no platform package; arm64: one that is not installed).
  writeFileSync(join(consumer, 'fake-arch.cjs'), "Object.defineProperty(process, 'arch', { value: process.env.FAKE_ARCH })\n")
  const probe = `import('@isec/node').then(() => console.log('loaded'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message, cause: !!e.cause })))`
  const libc = detectLibc()
  for (const arch of ['riscv64', 'arm64']) {
    const r = nodeIn(['-r', './fake-arch.cjs', '-e', probe], { FAKE_ARCH: arch })
    assert.equal(r.status, 0, r.stderr)
    const e = JSON.parse(r.stdout)
    assert.equal(e.code, 'ERR_ISEC_NO_BINARY')
    assert.ok(e.cause)
    assert.ok(e.message.includes(`linux ${arch} (${libc})`), e.message)
    if (arch === 'riscv64') {
      for (const p of prebuiltPlatforms()) assert.ok(e.message.includes(p), e.message)
      assert.doesNotMatch(e.message, /npm has a bug/)
    } else {
      assert.ok(e.message.includes(`@isec/node-linux-arm64-${libc === 'musl' ? 'musl' : 'gnu'}@${pkg.version}`), e.message)
    }
  }
  const r = nodeIn(['-r', './fake-arch.cjs', '-e', probe], { FAKE_ARCH: process.arch })
  assert.equal(r.stdout.trim(), 'loaded', r.stderr)
})

test('noBinaryError for platforms this machine cannot fake', () => {
  const e = noBinaryError({ platform: 'darwin', arch: 'arm64' })
  assert.equal(e.code, 'ERR_ISEC_NO_BINARY')
  assert.match(e.message, /no prebuilt native binary for darwin arm64\. Prebuilt: linux-x64-gnu, /)
  assert.equal(noBinaryError({ platform: 'linux', arch: 'x64', libc: 'musl' }).platform, 'linux-x64-musl')
  assert.match(noBinaryError({ platform: 'linux', arch: 'x64', libc: 'musl' }).message, /linux x64 \(musl\) did not load/)
})
