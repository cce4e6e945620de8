// placeholder: being written
#include "ember/vm.hpp"
