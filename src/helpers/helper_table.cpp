// placeholder
#include "ember/helpers.hpp"
