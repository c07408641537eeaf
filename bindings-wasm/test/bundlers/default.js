// init() with no argument: the bundler has to provide isec_wasm_bg.wasm next to the package.
import { roundTrip } from './app.js'

roundTrip()
