// The device registry (plan/device_registry.hpp): one entry per file of src/plan/devices/, listed in
// a fixed order under unique names, found by name with an error that lists them all.
#include "plan/device_registry.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/check.hpp"
#include "plan/device.hpp"

namespace w4a16 {
namespace {

TEST(DeviceRegistry, ListsTheDevicesInTheirOrder) {
  // The order of `w4a16 plan --device` / `w4a16 model --device` listings and of plan_devices().
  const std::vector<std::string> expected = {"cpu",         "h100",        "h200",       "a100",
                                             "ascend910b2", "ascend910b3", "ascend910b4"};
  EXPECT_EQ(plan::device_names(), expected);
}

TEST(DeviceRegistry, OneEntryPerFileWithUniqueNamesAndOrders) {
  std::set<std::string> files;
  for (const auto& f :
       std::filesystem::directory_iterator(std::filesystem::path(W4A16_SOURCE_DIR) / "src/plan/devices")) {
    if (f.path().extension() == ".cpp") files.insert(f.path().stem().string());
  }
  std::set<std::string> names;
  std::set<int> orders;
  for (const plan::DeviceEntry* e : plan::device_entries()) {
    SCOPED_TRACE(std::string(e->name));
    EXPECT_TRUE(names.insert(std::string(e->name)).second) << "two entries share a name";
    EXPECT_TRUE(orders.insert(e->order).second) << "two entries share an order";
    EXPECT_FALSE(e->summary.empty());
    ASSERT_NE(e->describe, nullptr);
    EXPECT_EQ(e->describe().name, e->name);
  }
  EXPECT_EQ(names, files) << "an entry is named after its file, and every file is one entry";
}

TEST(DeviceRegistry, UnknownNameListsTheKnownOnes) {
  try {
    (void)plan::device("h800");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(
        std::string(e.what()).find(
            "unknown device 'h800' (expected one of cpu, h100, h200, a100, ascend910b2, ascend910b3, ascend910b4)"),
        std::string::npos)
        << e.what();
  }
}

TEST(DeviceRegistry, KindNames) {
  EXPECT_EQ(plan::to_string(plan::DeviceKind::cpu), "cpu");
  EXPECT_EQ(plan::to_string(plan::DeviceKind::gpu), "gpu");
  EXPECT_EQ(plan::to_string(plan::DeviceKind::npu), "npu");
  EXPECT_EQ(plan::device("h100").kind, plan::DeviceKind::gpu);
  EXPECT_EQ(plan::device("ascend910b3").kind, plan::DeviceKind::npu);
  EXPECT_EQ(plan::device("cpu").kind, plan::DeviceKind::cpu);
}

}  // namespace
}  // namespace w4a16
