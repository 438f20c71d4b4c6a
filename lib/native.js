'use strict'
// The native addon reads Linux's cgroup and /proc files. Elsewhere (macOS,
// Windows) there is nothing for it to read, so it is not loaded at all and
// the package answers with the V8 and host numbers (lib/portable.js).

module.exports = process.platform === 'linux' ? require('../index.js') : null
