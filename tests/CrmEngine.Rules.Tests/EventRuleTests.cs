using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Rules.Events;

namespace CrmEngine.Rules.Tests;

public class EventRuleTests
{
    private static EventRules Start(TestWorld world)
    {
        world.Catalog.Reload();
        var rules = new EventRules(world.Engine, world.Catalog, world.Registry, world.Provider, world.Time);
        rules.Start();
        return rules;
    }

    [Fact]
    public async Task A_validate_rule_rejects_the_write_with_its_message()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "no-credit-for-blacklisted",
            "// @entity customer\n// @stage validate\nif (record.blacklisted && record.creditLimit > 0) {\n  api.reject('creditLimit', 'a blacklisted customer gets no credit');\n}\nif (record.name === 'x') return 'name too short';");
        using var rules = Start(world);

        var ex = await Assert.ThrowsAsync<ValidationException>(() => world.AddCustomerAsync("Bad", c => { c.Blacklisted = true; c.CreditLimit = 500; }));
        Assert.Contains("a blacklisted customer gets no credit", ex.Message, StringComparison.Ordinal);
        Assert.Contains("creditLimit", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no-credit-for-blacklisted.js", ex.Message, StringComparison.Ordinal);
        var ex2 = await Assert.ThrowsAsync<ValidationException>(() => world.AddCustomerAsync("x"));
        Assert.Contains("name too short", ex2.Message, StringComparison.Ordinal);
        Assert.Equal(0, await world.Store.Customers.CountAsync());

        Assert.NotNull(await world.AddCustomerAsync("Good", c => c.CreditLimit = 500));
    }

    [Fact]
    public async Task Pre_operation_rules_set_fields_in_their_declared_order()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "b-score", "// @entity customer\n// @stage pre\n// @order 20\nrecord.custom.score = record.owner === 'rep-north' ? 10 : 1;");
        world.WriteRule("events", "a-owner", "// @entity customer\n// @stage pre\n// @order 10\nif (!record.owner && record.region === 'north') record.owner = 'rep-north';\nrecord.stage = 'Prospect';");
        using var rules = Start(world);

        var c = await world.AddCustomerAsync("Acme", x => { x.Profile.Region = "north"; x.Stage = LifecycleStage.Stranger; });
        var stored = (await world.Store.Customers.GetAsync(c.Id))!;

        Assert.Equal("rep-north", stored.Owner);
        Assert.Equal(LifecycleStage.Prospect, stored.Stage);
        Assert.Equal(10m, stored.Custom["score"].Number);
    }

    [Fact]
    public async Task A_pre_operation_rule_that_sets_a_read_only_field_or_a_wrong_type_fails_the_write_naming_the_field()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "bad-pre", "// @entity customer\n// @stage pre\nif (record.name === 'id') record.id = 'mine'; else record.stage = 'Royalty';");
        using var rules = Start(world);

        var ex = await Assert.ThrowsAnyAsync<StoreException>(() => world.AddCustomerAsync("id"));
        Assert.Contains("field 'id' cannot be set by a rule", ex.ToString(), StringComparison.Ordinal);
        var ex2 = await Assert.ThrowsAnyAsync<StoreException>(() => world.AddCustomerAsync("other"));
        Assert.Contains("field 'stage' must be one of Stranger, Prospect", ex2.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, await world.Store.Customers.CountAsync());
        Assert.Equal(2, rules.Status().Single().Failures);
    }

    [Fact]
    public async Task A_failing_rule_with_on_error_skip_is_recorded_and_the_write_goes_on()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "flaky", "// @entity customer\n// @stage pre\n// @onError skip\nthrow new Error('flaky rule');");
        using var rules = Start(world);

        Assert.NotNull(await world.AddCustomerAsync("Acme"));
        var status = Assert.Single(rules.Status());
        Assert.Equal(1, status.Failures);
        Assert.Contains("flaky rule", status.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_post_operation_rule_tags_the_customer_and_creates_an_activity()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "big-order",
            "// @entity order\n// @stage post\nif (record.total >= 1000) {\n  api.addTag('big-buyer');\n  api.createActivity({ subject: 'Thank ' + record.number, type: 'Call', dueInDays: 2 });\n}");
        using var rules = Start(world);
        var c = await world.AddCustomerAsync("Acme");

        await world.Store.Orders.CreateAsync(new Order { CustomerId = c.Id, Number = "PO-1", Status = OrderStatus.Confirmed, Lines = [new OrderLine { Description = "widget", Quantity = 2, UnitPrice = 600 }] });

        var stored = (await world.Store.Customers.GetAsync(c.Id))!;
        Assert.Contains("big-buyer", stored.Tags);
        var activity = Assert.Single(await world.Store.Activities.FindAsync("customerId", c.Id));
        Assert.Equal("Thank PO-1", activity.Subject);
        Assert.Equal(ActivityType.Call, activity.Type);
        Assert.Equal("rule:big-order", activity.Source);
        Assert.Equal(world.Time.GetUtcNow().AddDays(2), activity.DueAt);
    }

    [Fact]
    public async Task An_async_rule_runs_after_commit()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "welcome", "// @entity customer\n// @stage async\nif (event.operation === 'create') api.createActivity({ subject: 'Welcome ' + record.name });");
        using var rules = Start(world);
        using var dispatcher = new AsyncDeliveryDispatcher(world.Pipeline);
        await dispatcher.StartAsync(CancellationToken.None);
        try
        {
            var c = await world.AddCustomerAsync("Acme");
            await SegmentTests.WaitFor(async () => (await world.Store.Activities.FindAsync("customerId", c.Id)).Count == 1);
            Assert.Equal("Welcome Acme", (await world.Store.Activities.FindAsync("customerId", c.Id))[0].Subject);
        }
        finally
        {
            await dispatcher.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Rules_that_trigger_each_other_are_stopped_by_the_depth_guard()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "echo", "// @entity activity\n// @stage post\napi.createActivity({ subject: 'echo of ' + record.subject });");
        using var rules = Start(world);
        var c = await world.AddCustomerAsync("Acme");

        var ex = await Assert.ThrowsAnyAsync<StoreException>(() => world.Store.Activities.CreateAsync(new Activity { CustomerId = c.Id, Subject = "hello" }));
        Assert.Contains("depth", ex.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.Empty(await world.Store.Activities.FindAsync("customerId", c.Id));
    }

    [Fact]
    public async Task A_saved_change_to_an_event_rule_applies_to_the_next_write()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "owner", "// @entity customer\n// @stage pre\nrecord.owner = 'first';");
        using var rules = Start(world);
        Assert.Equal("first", (await world.AddCustomerAsync("A")).Owner);

        world.WriteRule("events", "owner", "// @entity customer\n// @stage pre\nrecord.owner = 'second';");
        world.Catalog.Reload();
        Assert.Equal("second", (await world.AddCustomerAsync("B")).Owner);

        world.WriteRule("events", "owner", "// @entity customer\n// @stage pre\nrecord.owner = ;");
        Assert.Single(world.Catalog.Reload());
        Assert.Equal("second", (await world.AddCustomerAsync("C")).Owner);

        File.Delete(Path.Combine(world.RulesFolder, "events", "owner.js"));
        world.Catalog.Reload();
        Assert.Null((await world.AddCustomerAsync("D")).Owner);
    }

    [Fact]
    public void An_event_rule_without_entity_or_stage_is_refused_naming_the_header()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "nowhere", "// @stage pre\nrecord.owner = 'x';");
        world.WriteRule("events", "when", "// @entity customer\n// @stage sometimes\nrecord.owner = 'x';");
        var refusals = world.Catalog.Reload();
        Assert.Equal(2, refusals.Count);
        Assert.Contains(refusals, e => e.Message.Contains("@entity", StringComparison.Ordinal) && e.Script.EndsWith("nowhere.js", StringComparison.Ordinal));
        Assert.Contains(refusals, e => e.Message.Contains("@stage 'sometimes'", StringComparison.Ordinal) && e.Line == 2);
        Assert.Empty(world.Catalog.Events);
    }

    [Fact]
    public async Task A_rule_flooding_the_api_is_stopped_and_the_write_fails_cleanly()
    {
        using var world = new TestWorld();
        world.WriteRule("events", "flood", "// @entity customer\n// @stage post\nfor (let i = 0; i < 100000; i++) api.addTag('t' + i);");
        using var rules = Start(world);

        var ex = await Assert.ThrowsAnyAsync<StoreException>(() => world.AddCustomerAsync("Acme"));
        Assert.Contains("at most 100 addTag calls per run", ex.ToString(), StringComparison.Ordinal);
        Assert.Contains("flood.js", ex.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, await world.Store.Customers.CountAsync());
    }
}
