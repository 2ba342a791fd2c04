// @description Customers who have bought before but placed no order in the last 180 days.
// @timeout 50ms
//
// "Dormant" means: at least one order ever, and the most recent one is older than DAYS.
// Blacklisted customers are left out: win-back is not for defaulters.
const DAYS = 180;

return customer.orderCount > 0
    && customer.daysSinceLastOrder > DAYS
    && !customer.blacklisted;
