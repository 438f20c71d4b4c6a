'use strict'
// The native addon, or null where there is none to use: off Linux (nothing
// for it to read), with OOMGUARD_NATIVE=0, or where no binary fits or loads
// (lib/core/loader.js finds it, says why not, and warns once). Without it the
// package reads the kernel's files from JavaScript (lib/core/plain.js; watch()
// polls them, lib/core/poll.js) or, off Linux, answers with the V8 and host
// numbers (lib/core/portable.js).

module.exports = require('./loader.js').addon
