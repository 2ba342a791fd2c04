// @description Customers with overdue receivables (the card's overdue amount is above zero).
// @timeout 50ms
//
// MIN_OVERDUE ignores rounding leftovers; raise it to focus on the amounts that matter.
const MIN_OVERDUE = 0.01;

return customer.overdueAmount >= MIN_OVERDUE;
