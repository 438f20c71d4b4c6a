// `node --import file:///app/node_modules/oomguard/register.mjs app.mjs` (or an
// absolute path): ES module loading takes no extension off a file URL, so the
// file name ends in .mjs. The same once-per-process register as lib/register.mjs.
export { default } from './lib/integrations/register.mjs'
