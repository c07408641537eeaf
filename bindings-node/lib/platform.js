'use strict'
// Which platform this is, in the names of this package's platform packages
// (@isec/node-linux-x64-gnu, ...), and the error for a platform without a loadable binary
// (code ERR_ISEC_NO_BINARY). Used by ./native.js; separate so that it loads without the addon.

const pkg = require('../package.json')

/** 'glibc', 'musl' or '' (not Linux), as npm's `libc` field names them. */
function detectLibc(platform = process.platform) {
  if (platform !== 'linux') return ''
  try {
    const report = process.report && process.report.getReport()
    if (report && report.header && report.header.glibcVersionRuntime) return 'glibc'
    if (report && Array.isArray(report.sharedObjects) && report.sharedObjects.some((f) => /libc\.musl-|ld-musl-/.test(f))) return 'musl'
  } catch {
    // fall through to the file check
  }
  try {
    return require('node:fs').readFileSync('/usr/bin/ldd', 'utf8').includes('musl') ? 'musl' : 'glibc'
  } catch {
    return 'glibc'
  }
}

/** The platforms with a prebuilt binary: this package's platform packages. */
function prebuiltPlatforms() {
  return Object.keys(pkg.optionalDependencies || {}).map((n) => n.slice(`${pkg.name}-`.length))
}

/** The platform package name part (`linux-x64-gnu`) for a platform, arch and libc. */
function platformName({ platform, arch, libc }) {
  const abi = platform === 'linux' ? (libc === 'musl' ? '-musl' : '-gnu') : ''
  return `${platform}-${arch}${abi}`
}

/**
 * The error thrown where no binary loads. `cause`: the napi-rs loader's error (its cause
 * chain holds each attempt's failure).
 */
function noBinaryError({ platform = process.platform, arch = process.arch, libc = detectLibc(platform) } = {}, cause) {
  const name = platformName({ platform, arch, libc })
  const prebuilt = prebuiltPlatforms()
  const where = `${platform} ${arch}${libc ? ` (${libc})` : ''}`
  const message = prebuilt.includes(name)
    ? `@isec/node: the native binary for ${where} did not load. It comes in the optional ` +
      `dependency ${pkg.name}-${name}@${pkg.version}: install without --omit=optional / ` +
      `--no-optional (and with the same os, cpu and libc as where it runs), or see the cause.`
    : `@isec/node has no prebuilt native binary for ${where}. Prebuilt: ${prebuilt.join(', ')}. ` +
      `Elsewhere build it from source (bindings-node: npx napi build --platform --release), or ` +
      `use @isec/wasm.`
  const e = new Error(message)
  e.code = 'ERR_ISEC_NO_BINARY'
  e.platform = name
  e.prebuilt = prebuilt
  if (cause !== undefined) e.cause = cause
  return e
}

module.exports = { detectLibc, prebuiltPlatforms, platformName, noBinaryError }
