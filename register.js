'use strict'
// `node -r /app/node_modules/oomguard/register app.js`, as Dockerfiles write
// NODE_OPTIONS with an absolute path: a path is resolved as a file, not
// through package.json "exports", so the register must exist here too. It is
// lib/integrations/register.js, loaded once per process however it is reached.
module.exports = require('./lib/integrations/register.js')
