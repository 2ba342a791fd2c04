// @entity customer
// @stage pre
// @order 10
// @description Gives a customer without an owner the sales rep of its region.
//
// Edit the table to match your territories. Regions are compared without regard to case;
// a customer whose region is not in the table keeps having no owner.
const OWNERS = {
  north: 'anna',
  south: 'bruno',
  east: 'chen',
  west: 'dara',
};

if (!record.owner && record.region) {
  const owner = OWNERS[strings.lower(record.region)];
  if (owner) {
    record.owner = owner;
  }
}
