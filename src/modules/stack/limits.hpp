// The site's ResourceQuota and LimitRange checked against what the stack itself asks for.
// Internal to the stack module (settings.cpp).
#pragma once

#include "modules/stack/stack.hpp"

#include <string>
#include <vector>

namespace nodectl::stack::detail {

// The pods the site runs at its largest (autoscaling.max Magento pods, one backup Job pod) and
// their requests and limits summed, against the quota; each container's limits against the
// LimitRange's max, and its defaults against each other. One "WHERE: reason" per problem.
std::vector<std::string> limit_problems(const Site& site, const ConfigView& quota, const ConfigView& limit_range);

}  // namespace nodectl::stack::detail
