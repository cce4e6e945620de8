// placeholder: being written
#include "ember/asm.hpp"
