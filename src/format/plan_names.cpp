// The spelling of the public plan enums (strategy, partition, x format): one name table each,
// printed and parsed by the same functions (common/name_table.hpp).
#include <array>

#include "common/name_table.hpp"

namespace w4a16 {

namespace {
constexpr std::array<Named<Strategy>, 5> kStrategyNames{{{Strategy::automatic, "auto"},
                                                         {Strategy::fused, "fused"},
                                                         {Strategy::decoupled, "decoupled"},
                                                         {Strategy::pipelined, "pipelined"},
                                                         {Strategy::dense, "dense"}}};
constexpr std::array<Named<Partition>, 3> kPartitionNames{
    {{Partition::automatic, "auto"}, {Partition::data_parallel, "dp"}, {Partition::split_k, "splitk"}}};
constexpr std::array<Named<XFormat>, 2> kXFormatNames{{{XFormat::f32, "fp32"}, {XFormat::bf16, "bf16"}}};
}  // namespace

std::string_view to_string(Strategy s) { return name_of(kStrategyNames, s); }
std::string_view to_string(Partition p) { return name_of(kPartitionNames, p); }
std::string_view to_string(XFormat x) { return name_of(kXFormatNames, x); }
Strategy parse_strategy(std::string_view name) { return parse_name(kStrategyNames, name, "strategy"); }
Partition parse_partition(std::string_view name) { return parse_name(kPartitionNames, name, "partition"); }

}  // namespace w4a16
