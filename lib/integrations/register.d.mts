// `import 'oomguard/register'` (lib/integrations/register.mjs).
import type state from './register.js'

declare const registered: state.RegisterState
export default registered
