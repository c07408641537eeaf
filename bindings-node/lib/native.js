'use strict'
// Loads the native addon through the napi-rs loader (../index.js: this directory's
// isec.<platform>.node first, then the platform package @isec/node-<platform>, one of this
// package's optionalDependencies). Where neither loads, that loader's message blames an npm
// bug; this one names the platform, the prebuilt platforms and what to do, with the stable
// code ERR_ISEC_NO_BINARY.
//
// `module.exports = require(...)` is kept literal so that Node's CommonJS named-export
// detection (cjs-module-lexer) follows it to the loader's `module.exports.X =` lines: every
// native export stays importable by name from ESM without a list here.

const { noBinaryError } = require('./platform.js')

try {
  module.exports = require('../index.js')
} catch (e) {
  throw noBinaryError(undefined, e)
}
