using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;

namespace CrmEngine.Core.Tests;

public class PipelineStageTests
{
    [Fact]
    public async Task Validation_names_every_bad_field_and_stores_nothing()
    {
        using var engine = new TestEngine();
        var bad = new Customer
        {
            Name = "  ",
            Emails = ["ok@example.com", "not-an-email"],
            Custom = { ["vip"] = new CustomValue { Type = CustomValueType.Number, Text = "yes" } },
        };

        var ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store.Customers.CreateAsync(bad));

        Assert.Equal(EntityNames.Customer, ex.Entity);
        var fields = ex.Errors.Select(e => e.Field).ToList();
        Assert.Contains("Name", fields);
        Assert.Contains("Emails[1]", fields);
        Assert.Contains("Custom[vip]", fields);
        Assert.DoesNotContain("Emails[0]", fields);
        Assert.Equal(0, await engine.Store.Customers.CountAsync());
        Assert.Equal(0, await engine.Store.Changes.LastSequenceAsync());
    }

    [Fact]
    public async Task Order_lines_and_references_are_checked()
    {
        using var engine = new TestEngine();
        var ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store.Orders.CreateAsync(new Order
        {
            CustomerId = "missing",
            Currency = "EURO",
            Lines = [new OrderLine { Description = "x", Quantity = 0, UnitPrice = -1 }],
        }));

        var fields = ex.Errors.Select(e => e.Field).ToList();
        Assert.Contains("CustomerId", fields);
        Assert.Contains("Currency", fields);
        Assert.Contains("Lines[0].Quantity", fields);
        Assert.Contains("Lines[0].UnitPrice", fields);
        Assert.Equal(0, await engine.Store.Orders.CountAsync());
    }

    [Fact]
    public async Task Validate_handlers_reject_with_their_field_and_message()
    {
        using var engine = new TestEngine();
        using var _ = engine.On<Customer>("sales", PipelineStage.Validate, (e, _) =>
        {
            if (e.After!.Owner is null)
            {
                e.Reject("Owner", "every customer needs an owner");
            }

            return Task.CompletedTask;
        });

        var ex = await Assert.ThrowsAsync<ValidationException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer()));
        Assert.Equal(new ValidationError("Owner", "every customer needs an owner"), Assert.Single(ex.Errors));
        Assert.Equal(0, await engine.Store.Customers.CountAsync());

        var ok = await engine.Store.Customers.CreateAsync(new Customer { Name = "B", Owner = "rep:1" });
        Assert.Equal(1, ok.Version);
    }

    [Fact]
    public async Task Pre_operation_handlers_change_what_is_stored_but_not_the_engine_fields()
    {
        using var engine = new TestEngine();
        using var _ = engine.On<Customer>("sales", PipelineStage.PreOperation, (e, _) =>
        {
            e.After!.Owner ??= "rep:default";
            e.After.Tags.Add("auto");
            e.After.Version = 99; // ignored: the engine owns the version
            return Task.CompletedTask;
        });

        var created = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        var stored = await engine.Store.Customers.GetAsync(created.Id);

        Assert.Equal("rep:default", stored!.Owner);
        Assert.Equal(["auto"], stored.Tags);
        Assert.Equal(1, stored.Version);
        Assert.Equal("rep:default", created.Owner);
    }

    [Fact]
    public async Task Post_operation_writes_commit_with_the_write()
    {
        using var engine = new TestEngine();
        using var _ = engine.On<Customer>("welcome", PipelineStage.PostOperation, async (e, ct) =>
        {
            if (e.Operation == ChangeOperation.Create)
            {
                var store = engine.Provider.ForActor("ignored");
                await store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "Welcome " + e.After!.Name }, ct);
                // Reads inside the handler see the write's own uncommitted state.
                Assert.NotNull(await store.Customers.GetAsync(e.EntityId, ct));
            }
        });

        var customer = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Beta"));

        var activities = await engine.Store.Activities.FindAsync("customerId", customer.Id);
        Assert.Equal("Welcome Beta", Assert.Single(activities).Subject);
        var changes = await engine.Store.Changes.ReadAsync(0);
        Assert.Equal([EntityNames.Customer, EntityNames.Activity], changes.Select(c => c.Entity));
        Assert.Equal("user:alice", changes[0].Actor);
        Assert.Equal("plugin:welcome", changes[1].Actor);
        Assert.Equal([1L, 2L], changes.Select(c => c.Sequence));
    }

    [Fact]
    public async Task A_throwing_post_operation_handler_rolls_back_everything_it_and_the_write_did()
    {
        using var engine = new TestEngine();
        using var _ = engine.On<Customer>("welcome", PipelineStage.PostOperation, async (e, ct) =>
        {
            await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "Welcome" }, ct);
            throw new InvalidOperationException("mail server down");
        }, name: "welcome:WelcomeHandler");

        var ex = await Assert.ThrowsAsync<HandlerFailedException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer()));

        Assert.Equal("welcome", ex.OwnerId);
        Assert.Equal("welcome:WelcomeHandler", ex.HandlerName);
        Assert.Contains("welcome:WelcomeHandler", ex.Message);
        Assert.Contains("mail server down", ex.Message);
        Assert.Equal(0, await engine.Store.Customers.CountAsync());
        Assert.Equal(0, await engine.Store.Activities.CountAsync());
        Assert.Equal(0, await engine.Store.Changes.LastSequenceAsync());

        // The sequence is not consumed by the rolled-back write: the next change is 1.
        _.Dispose();
        await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer());
        Assert.Equal(1, await engine.Store.Changes.LastSequenceAsync());
    }

    [Fact]
    public async Task Handlers_see_before_and_after_images_as_copies()
    {
        using var engine = new TestEngine();
        var seen = new List<(string? Before, string? After)>();
        using var _ = engine.On<Customer>("spy", PipelineStage.PostOperation, (e, _) =>
        {
            seen.Add((e.Before?.Name, e.After?.Name));
            if (e.After is not null)
            {
                e.After.Name = "tampered"; // a copy: no effect on the store
            }

            return Task.CompletedTask;
        });

        var c = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("One"));
        c.Name = "Two";
        c = await engine.Store.Customers.UpdateAsync(c);
        await engine.Store.Customers.DeleteAsync(c.Id);

        Assert.Equal([(null, "One"), ("One", "Two"), ("Two", null)], seen);
        Assert.Equal("Two", c.Name);
    }

    [Fact]
    public async Task A_handler_that_swallows_a_failed_nested_write_cannot_commit_half_of_it()
    {
        using var engine = new TestEngine();
        // The activity's post-operation handler fails after the activity was written.
        using var a = engine.On<Activity>("broken", PipelineStage.PostOperation, (_, _) => throw new InvalidOperationException("boom"));
        using var c = engine.On<Customer>("welcome", PipelineStage.PostOperation, async (e, ct) =>
        {
            try
            {
                await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "Welcome" }, ct);
            }
            catch (HandlerFailedException)
            {
                // swallowed on purpose
            }
        });

        await Assert.ThrowsAnyAsync<StoreException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer()));
        Assert.Equal(0, await engine.Store.Activities.CountAsync());
        Assert.Equal(0, await engine.Store.Customers.CountAsync());
    }

    [Fact]
    public async Task Batch_create_runs_the_pipeline_per_record_and_is_all_or_nothing()
    {
        using var engine = new TestEngine();
        var handled = 0;
        using var _ = engine.On<Customer>("count", PipelineStage.PreOperation, (e, _) =>
        {
            Interlocked.Increment(ref handled);
            return Task.CompletedTask;
        });

        var created = await engine.Store.Customers.CreateManyAsync([TestEngine.NewCustomer("A"), TestEngine.NewCustomer("B")]);
        Assert.Equal(2, created.Count);
        Assert.Equal(2, handled);

        var ex = await Assert.ThrowsAnyAsync<StoreException>(() =>
            engine.Store.Customers.CreateManyAsync([TestEngine.NewCustomer("C"), TestEngine.NewCustomer("")]));
        Assert.Contains("Record 1", ex.Message);
        Assert.Equal(2, await engine.Store.Customers.CountAsync());
        Assert.Equal(2, await engine.Store.Changes.LastSequenceAsync());
    }
}
