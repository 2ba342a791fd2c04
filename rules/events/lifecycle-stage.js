// @entity order
// @stage async
// @order 10
// @facts yes
// @description Moves the customer along the lifecycle after each order: new, repeat, loyal; dormant or lost when buying stopped.
//
// Runs after an order is committed, with the customer's figures in event.customer.
// Thresholds: 2 orders = repeat customer, 5 = loyal; no order for 180 days = dormant, 365 = lost.
// Like every event rule it runs only when an order is written: a customer who stops buying is not moved
// by time alone (the dormant-customers segment, refreshed on a schedule, lists those).
const REPEAT_AT = 2;
const LOYAL_AT = 5;
const DORMANT_AFTER_DAYS = 180;
const LOST_AFTER_DAYS = 365;

const c = event.customer;
if (!c) {
  return;
}

let stage;
if (c.orderCount === 0) {
  stage = c.stage === 'Stranger' ? 'Stranger' : 'Prospect';
} else if (c.daysSinceLastOrder > LOST_AFTER_DAYS) {
  stage = 'Lost';
} else if (c.daysSinceLastOrder > DORMANT_AFTER_DAYS) {
  stage = 'Dormant';
} else if (c.orderCount >= LOYAL_AT) {
  stage = 'LoyalCustomer';
} else if (c.orderCount >= REPEAT_AT) {
  stage = 'RepeatCustomer';
} else {
  stage = 'NewCustomer';
}

const status = c.orderCount > 0 ? 'Existing' : c.status;
if (stage !== c.stage || status !== c.status) {
  log('stage', c.stage, '->', stage);
  api.setCustomerFields({ stage: stage, status: status });
}
