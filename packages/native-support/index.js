// Where the headers are, for a native package's CMakeLists.txt (as node-addon-api's include_dir):
//   execute_process(COMMAND node -p "require('@fastattention/native-support').include_dir" ...)
// then `#include <fastattention/napi_error.h>`. An absolute path: cmake runs node in the package
// that depends on this one, wherever the package manager put it.
const path = require('node:path');

module.exports = {
  include_dir: path.join(__dirname, 'include'),
};
