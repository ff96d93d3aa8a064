// Transitional: the 910B generation's facts moved to plan/devices/ascend910b.hpp (beside the SKU files
// that use them); the device descriptions are looked up through the registry (plan/device_registry.hpp).
// Includers switch to ascend910b.hpp, then this file goes.
#pragma once

#include "plan/devices/ascend910b.hpp"
