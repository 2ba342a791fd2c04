using CrmEngine.Abstractions.Model;
using CrmEngine.Rules.Admin;
using CrmEngine.Rules.Segments;
using CrmEngine.Rules.Testing;

namespace CrmEngine.Rules.Tests;

/// <summary>
/// Issue #9 (review findings 6 and 10): dry runs, explanations and segment memberships as a user sees them. Anna reads only
/// what she owns and may not read overdueAmount; Ben's order and activity on her customer are not hers.
/// </summary>
public class ReaderViewTests
{
    private static FactsAccess Anna(params string[] hiddenOrderFields) => new("anna", (_, _, owner) => owner == "anna",
        entity => entity switch
        {
            EntityNames.Customer => ["overdueAmount"],
            EntityNames.Order => hiddenOrderFields,
            _ => [],
        });

    private static async Task<(Customer Mixed, Customer Own)> SeedAsync(TestWorld world)
    {
        var mixed = await world.AddCustomerAsync("Mixed", c => { c.Owner = "anna"; c.OverdueAmount = 4711; });
        var own = await world.AddCustomerAsync("Own", c => c.Owner = "anna");
        await world.Store.Orders.CreateAsync(new Order
        {
            CustomerId = mixed.Id, Number = "A-1", Owner = "anna", Status = OrderStatus.Paid, OrderedAt = world.Time.GetUtcNow().AddDays(-20),
            Lines = [new OrderLine { Description = "a", Quantity = 1, UnitPrice = 100 }],
        });
        await world.Store.Orders.CreateAsync(new Order
        {
            CustomerId = mixed.Id, Number = "B-77", Owner = "ben", Status = OrderStatus.Confirmed, OrderedAt = world.Time.GetUtcNow().AddDays(-2),
            Lines = [new OrderLine { Description = "b", Quantity = 1, UnitPrice = 1500.25m }],
        });
        await world.Store.Activities.CreateAsync(new Activity { CustomerId = mixed.Id, Subject = "Ben's visit", Owner = "ben", Status = ActivityStatus.Planned });
        await world.Store.Orders.CreateAsync(new Order
        {
            CustomerId = own.Id, Number = "A-2", Owner = "anna", Status = OrderStatus.Paid, OrderedAt = world.Time.GetUtcNow().AddDays(-5),
            Lines = [new OrderLine { Description = "a", Quantity = 2, UnitPrice = 50 }],
        });
        return (mixed, own);
    }

    /// <summary>The seeded world, a probe script file with <paramref name="code"/>, and a tester.</summary>
    private static async Task<(Customer Mixed, string File, RuleTester Tester)> ProbeAsync(TestWorld world, string code)
    {
        var (mixed, _) = await SeedAsync(world);
        var file = Path.Combine(world.Folder, "probe.js");
        File.WriteAllText(file, code);
        return (mixed, file, new RuleTester(world.Engine, world.Catalog, world.Provider, world.Time));
    }

    [Fact]
    public async Task A_dry_run_as_a_user_counts_only_the_orders_and_activities_they_may_read_and_says_so()
    {
        using var world = new TestWorld();
        var (mixed, file, tester) = await ProbeAsync(world, "log('count', customer.orderCount, 'total', customer.totalSpent, 'open', customer.openActivities,\n" +
            "  'numbers', customer.orders.map(o => o.number).join('+'), 'acts', customer.activityCount);\nreturn customer.orderCount > 1;");

        var asAnna = await tester.TestAsync(file, [mixed.Id], access: Anna());
        var text = asAnna.ToText();
        var run = Assert.Single(asAnna.Runs);
        Assert.Equal(false, run.Result.Value);
        Assert.Equal(["count 1 total 100 open 0 numbers A-1 acts 0"], run.Result.Log);
        Assert.DoesNotContain("B-77", text, StringComparison.Ordinal);
        Assert.DoesNotContain("1600.25", text, StringComparison.Ordinal);
        Assert.DoesNotContain("1500.25", text, StringComparison.Ordinal);
        Assert.Contains("facts as user 'anna' sees them", text, StringComparison.Ordinal);

        // The machine operator sees both orders and Ben's open visit.
        var all = await tester.TestAsync(file, [mixed.Id]);
        Assert.Equal(true, Assert.Single(all.Runs).Result.Value);
        Assert.Contains("count 2 total 1600.25", Assert.Single(Assert.Single(all.Runs).Result.Log), StringComparison.Ordinal);
        Assert.Contains("numbers B-77+A-1 acts 1", Assert.Single(Assert.Single(all.Runs).Result.Log), StringComparison.Ordinal);
        Assert.DoesNotContain("facts as user", all.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_order_rule_dry_run_as_a_user_takes_only_their_orders_without_the_order_fields_hidden_from_them()
    {
        using var world = new TestWorld();
        var (mixed, file, tester) = await ProbeAsync(world, "// @entity order\n// @stage pre\n// @facts yes\n" +
            "log('number', record.number, 'total', typeof record.total, 'before', typeof event.before.total, 'spent', typeof event.customer.totalSpent, 'count', event.customer.orderCount);");

        var text = (await tester.TestAsync(file, [mixed.Id], access: Anna("total"))).ToText();
        Assert.Contains("log: number A-1 total undefined before undefined spent undefined count 1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("B-77", text, StringComparison.Ordinal);
        Assert.DoesNotContain("1500.25", text, StringComparison.Ordinal);

        // The operator's dry run takes the most recent order, Ben's.
        Assert.Contains("log: number B-77 total number before number spent number count 2", (await tester.TestAsync(file, [mixed.Id])).ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Facts_made_from_hidden_fields_are_absent_too()
    {
        var reader = new FactsAccess("max", (_, _, _) => true, e => e == EntityNames.Customer ? ["addresses"] : e == EntityNames.Order ? ["orderedAt"] : [], _ => true);
        var customer = new Customer { Name = "Acme", Addresses = [new Address { City = "Ulm", Country = "DE", PostalCode = "89073", Region = "BW" }] };
        var order = new Order { Id = "o1", Number = "N1", Status = OrderStatus.Paid, OrderedAt = DateTimeOffset.UnixEpoch, Lines = [new OrderLine { Quantity = 1, UnitPrice = 9 }] };
        var facts = reader.Mask(CustomerFacts.Build(customer, [order], [], DateTimeOffset.UnixEpoch.AddDays(10)))!;

        foreach (var gone in new[] { "addresses", "city", "country", "postalCode", "region", "lastOrderDate", "firstOrderDate", "daysSinceLastOrder", "spentLast90Days" })
        {
            Assert.False(facts.ContainsKey(gone), gone);
        }

        Assert.Equal(9d, facts["totalSpent"]);
        var listed = Assert.IsType<Dictionary<string, object?>>(Assert.Single(Assert.IsType<List<object?>>(facts["orders"])));
        Assert.False(listed.ContainsKey("date"));
        Assert.Equal("N1", listed["number"]);
    }

    [Fact]
    public async Task A_segment_reading_a_hidden_field_does_not_exist_for_the_user_and_order_figures_show_only_where_every_order_is_theirs()
    {
        using var world = new TestWorld();
        var (mixed, own) = await SeedAsync(world);
        world.WriteRule("segments", "owing", "return customer.overdueAmount > 0;");
        world.WriteRule("segments", "buyers", "return customer.orderCount > 0;");
        world.WriteRule("segments", "named", "return customer.name.length > 0;");
        world.WriteRule("segments", "opaque", "const c = customer;\nreturn c.name.length > 0;");
        world.Catalog.Reload();
        await world.Segments.RebuildAllAsync();
        Assert.Contains(mixed.Id, await world.MembersAsync("owing"));
        Assert.Equal([mixed.Id, own.Id], (await world.MembersAsync("buyers")).Order(StringComparer.Ordinal));

        var anna = world.Segments.ViewFor(Anna());
        Assert.False(anna.Sees("owing"));
        Assert.False(anna.Sees("opaque")); // its reads cannot be told and a field is hidden from her
        Assert.True(anna.Sees("named"));
        Assert.True(anna.Sees("buyers"));
        Assert.False(anna.Sees("no-such-segment"));
        Assert.False(await anna.SeesMembershipAsync("buyers", mixed.Id)); // Ben's order counts there
        Assert.True(await anna.SeesMembershipAsync("buyers", own.Id));
        Assert.Equal(["named"], (await anna.MembershipsAsync(mixed)).Order(StringComparer.Ordinal));
        Assert.Equal(["buyers", "named"], (await anna.MembershipsAsync(own)).Order(StringComparer.Ordinal));

        // A reader from whom nothing is hidden and who reads every record sees every segment and membership.
        var operatorView = world.Segments.ViewFor(null);
        Assert.Equal(["buyers", "named", "opaque", "owing"], (await operatorView.MembershipsAsync(mixed)).Order(StringComparer.Ordinal));
        var open = world.Segments.ViewFor(new FactsAccess("mia", (_, _, _) => true, _ => [], _ => true));
        Assert.True(open.Sees("opaque"));
        Assert.Equal(4, (await open.MembershipsAsync(mixed)).Count);

        // explain --as: the stored decision is withheld where it would tell, and the re-run uses her facts.
        var owing = RulesText.Explain(await world.Segments.ExplainAsync("owing", mixed.Id, access: Anna()));
        Assert.Contains("not shown", owing, StringComparison.Ordinal);
        Assert.DoesNotContain(" IN ", owing, StringComparison.Ordinal);
        Assert.DoesNotContain("4711", owing, StringComparison.Ordinal);
        var buyers = RulesText.Explain(await world.Segments.ExplainAsync("buyers", own.Id, access: Anna()));
        Assert.Contains("is IN segment buyers", buyers, StringComparison.Ordinal);
        Assert.Contains("facts as user 'anna' sees them", buyers, StringComparison.Ordinal);
        Assert.Contains("is IN segment owing", RulesText.Explain(await world.Segments.ExplainAsync("owing", mixed.Id)), StringComparison.Ordinal);
    }
}
