// `node --import oomguard/register app.mjs`: the same as the CommonJS
// register (lib/integrations/register.js), which runs once per process however often and
// however (require, import, -r, --import) it is loaded.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const state = require('./register.js')

export default state
