// @description Customers who spent more than 5,000 in the last 180 days and have at least 10 orders.
// @timeout 50ms
//
// Change the two numbers below to move the bar. Amounts are summed as stored (one currency assumed).
const MIN_SPENT_180_DAYS = 5000;
const MIN_ORDERS = 10;

return customer.spentLast180Days > MIN_SPENT_180_DAYS
    && customer.orderCount >= MIN_ORDERS;
