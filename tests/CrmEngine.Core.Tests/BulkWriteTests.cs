using System.Collections.Concurrent;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;

namespace CrmEngine.Core.Tests;

public class BulkWriteTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A batch of creates and updates with every kind of refusal in it: each write reports its own outcome,
    /// the good ones are stored exactly once, the change feed has no gaps, every stored write has its audit entry.
    /// </summary>
    [Fact]
    public async Task Each_write_of_a_batch_keeps_its_own_outcome_and_the_good_ones_are_stored_once()
    {
        using var engine = new TestEngine();
        var existing = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Existing", "old@example.com"));
        var stale = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Stale"));
        stale.Name = "Stale (changed elsewhere)";
        await engine.Store.Customers.UpdateAsync(stale); // now at version 2; the batch still holds version 1

        // "late-fail" records are refused by a post-operation handler AFTER it wrote an activity: that dooms the
        // shared transaction, so the batch must be split and the others stored anyway.
        var postSeen = new ConcurrentBag<string>();
        using var post = engine.On<Customer>("picky", PipelineStage.PostOperation, async (e, ct) =>
        {
            await engine.Store.Activities.CreateAsync(new Activity { CustomerId = e.EntityId, Subject = "welcome " + e.After!.Name }, ct);
            if (e.After.Name.StartsWith("late-fail", StringComparison.Ordinal))
            {
                throw new InvalidOperationException("refused after the write");
            }

            postSeen.Add(e.EntityId);
        });

        var toUpdate = (await engine.Store.Customers.GetAsync(existing.Id))!;
        toUpdate.Name = "Existing (renamed)";
        var staleCopy = (await engine.Store.Customers.GetAsync(stale.Id))!;
        staleCopy.Version = 1;
        staleCopy.Name = "lost update";

        var writes = new List<BulkWrite<Customer>>();
        for (var i = 0; i < 40; i++)
        {
            var name = (i % 10) switch
            {
                3 => "late-fail " + i,
                7 => "", // validation: Name is required
                _ => "ok " + i,
            };
            writes.Add(new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer(name, $"c{i}@example.com")));
            if (i == 12)
            {
                writes.Add(new BulkWrite<Customer>(BulkOperation.Update, toUpdate));
            }

            if (i == 25)
            {
                writes.Add(new BulkWrite<Customer>(BulkOperation.Update, staleCopy));
            }
        }

        var results = await engine.Store.Customers.WriteManyAsync(writes);

        Assert.Equal(writes.Count, results.Count);
        for (var i = 0; i < writes.Count; i++)
        {
            var r = results[i];
            Assert.Equal(i, r.Index);
            var entity = writes[i].Entity;
            if (ReferenceEquals(entity, staleCopy))
            {
                Assert.IsType<ConcurrencyException>(r.Error);
                Assert.Null(r.Stored);
            }
            else if (entity.Name.Length == 0)
            {
                var error = Assert.IsType<ValidationException>(r.Error);
                Assert.Contains(error.Errors, e => e.Field == "Name");
            }
            else if (entity.Name.StartsWith("late-fail", StringComparison.Ordinal))
            {
                Assert.IsType<HandlerFailedException>(r.Error);
            }
            else
            {
                Assert.True(r.Succeeded, r.Error?.ToString());
                Assert.Equal(entity.Name, r.Stored!.Name);
                Assert.Equal(entity.Name, (await engine.Store.Customers.GetAsync(r.Stored.Id))!.Name);
            }
        }

        var stored = results.Where(r => r.Succeeded).Select(r => r.Stored!).ToList();
        Assert.Equal(2, (await engine.Store.Customers.GetAsync(existing.Id))!.Version);
        Assert.Equal("Stale (changed elsewhere)", (await engine.Store.Customers.GetAsync(stale.Id))!.Name);

        // Stored exactly once: 2 seeded + the good creates; one welcome activity per good write, none for refused ones.
        var goodCreates = stored.Count(s => s.Version == 1);
        Assert.Equal(32, goodCreates);
        Assert.Equal(2 + goodCreates, await engine.Store.Customers.CountAsync());
        var activities = await engine.Store.Activities.ListAsync(1000);
        Assert.Equal(stored.Count, activities.Count);
        Assert.Equal(stored.Select(s => s.Id).Order(), activities.Select(a => a.CustomerId).Order());
        Assert.DoesNotContain(await engine.Store.Customers.ListAsync(1000), c => c.Name.StartsWith("late-fail", StringComparison.Ordinal));

        // The change feed is gap-free and holds one record per stored write (and its activity), none for refused ones.
        var feed = await engine.Store.Changes.ReadAsync(0, 10_000);
        Assert.Equal(Enumerable.Range(1, feed.Count).Select(i => (long)i), feed.Select(c => c.Sequence));
        var customerChanges = feed.Where(c => c.Entity == EntityNames.Customer).Skip(3).ToList(); // 2 creates + 1 update before the batch
        Assert.Equal(stored.Select(s => s.Id).Order(), customerChanges.Select(c => c.EntityId).Order());
        Assert.Equal(stored.Count, feed.Count(c => c.Entity == EntityNames.Activity));

        // Every stored write has its audit entry with its fields.
        foreach (var s in stored)
        {
            var history = await engine.Store.Audit.ForEntityAsync(EntityNames.Customer, s.Id);
            var last = history[^1];
            Assert.Equal(s.Version == 1 ? ChangeOperation.Create : ChangeOperation.Update, last.Operation);
            Assert.Contains(last.Changes, f => f.Field == "Name" && f.After == "\"" + s.Name + "\"");
        }

        // The post-operation handler saw every stored record (and, in the runs that were rolled back, records
        // under ids that were generated again when the batch was replayed).
        Assert.Subset(postSeen.ToHashSet(), stored.Select(s => s.Id).ToHashSet());
        // A write that failed is not run again: each late failure is reported once.
        Assert.Equal(4, engine.Observer.FailedSnapshot().Count(f => f.Owner == "picky"));
    }

    [Fact]
    public async Task Every_handler_stage_runs_for_every_record_of_a_batch_and_pre_operation_changes_are_kept()
    {
        using var engine = new TestEngine();
        var validated = new ConcurrentBag<string>();
        var posted = new ConcurrentBag<long>();
        using var v = engine.On<Customer>("check", PipelineStage.Validate, (e, _) =>
        {
            validated.Add(e.EntityId);
            if (e.After!.Name.Contains("forbidden", StringComparison.Ordinal))
            {
                e.Reject("Name", "is forbidden here");
            }

            return Task.CompletedTask;
        });
        using var pre = engine.On<Customer>("tagger", PipelineStage.PreOperation, (e, _) =>
        {
            e.After!.Tags.Add("imported");
            return Task.CompletedTask;
        });
        using var post = engine.On<Customer>("counter", PipelineStage.PostOperation, (e, _) =>
        {
            posted.Add(e.Sequence);
            return Task.CompletedTask;
        });

        var writes = Enumerable.Range(0, 300)
            .Select(i => new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer(i == 150 ? "forbidden 150" : $"Bulk {i}")))
            .ToList();
        var results = await engine.Store.Customers.WriteManyAsync(writes);

        Assert.Equal(300, validated.Count);
        var refused = Assert.Single(results, r => !r.Succeeded);
        Assert.Equal(150, refused.Index);
        Assert.Contains("is forbidden here", refused.Error!.Message, StringComparison.Ordinal);
        Assert.All(results.Where(r => r.Succeeded), r => Assert.Contains("imported", r.Stored!.Tags));
        Assert.Equal(299, posted.Count);
        Assert.Equal(Enumerable.Range(1, 299).Select(i => (long)i), posted.Order());
        var tagged = await engine.Store.Customers.FindAsync("tag", "IMPORTED", 1000);
        Assert.Equal(299, tagged.Count);
    }

    [Fact]
    public async Task Async_deliveries_are_made_for_every_record_of_a_batch()
    {
        using var engine = new TestEngine(new PipelineOptions { HandlerTimeout = TimeSpan.FromSeconds(10), AsyncRetryBaseDelay = TimeSpan.FromMilliseconds(5) });
        using var dispatcher = new AsyncDeliveryDispatcher(engine.Pipeline);
        var delivered = new ConcurrentDictionary<string, int>();
        using var _ = engine.On<Customer>("erp", PipelineStage.Async, (e, _) =>
        {
            delivered.AddOrUpdate(e.EntityId + "/" + e.Operation, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        }, name: "erp:Push");
        await dispatcher.StartAsync(CancellationToken.None);

        var first = await engine.Store.Customers.WriteManyAsync(
            Enumerable.Range(0, 120).Select(i => new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer($"Async {i}"))).ToList());
        var updates = first.Take(50).Select(r =>
        {
            r.Stored!.Name += " (updated)";
            return new BulkWrite<Customer>(BulkOperation.Update, r.Stored);
        }).ToList();
        var second = await engine.Store.Customers.WriteManyAsync(updates);
        Assert.All(first.Concat(second), r => Assert.True(r.Succeeded));

        var until = DateTime.UtcNow + Patience;
        // Eventually: every delivery made and none left pending (a delivery row is removed after its handler returns).
        while ((delivered.Count < 170 || (await dispatcher.ListAsync()).Count > 0) && DateTime.UtcNow < until)
        {
            await Task.Delay(50);
        }

        var expected = first.Select(r => r.Stored!.Id + "/Create").Concat(second.Select(r => r.Stored!.Id + "/Update")).Order();
        Assert.Equal(expected, delivered.Keys.Order());
        var left = await dispatcher.ListAsync();
        Assert.Empty(left);
        await dispatcher.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_batch_larger_than_one_transaction_keeps_order_and_outcomes()
    {
        using var engine = new TestEngine();
        // Transactions of 300 writes here (the engine's default is larger): the call spans several groups.
        const int count = 1_000;
        var writes = Enumerable.Range(0, count)
            .Select(i => new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer(i % 100 == 99 ? "" : $"Big {i}", $"big{i}@example.com")))
            .ToList();

        var results = await ((EntitySet<Customer>)engine.Store.Customers).TryWriteManyAsync(writes, CancellationToken.None, transactionSize: 300);

        Assert.NotNull(results);
        Assert.Equal(Enumerable.Range(0, count), results.Select(r => r.Index));
        for (var i = 0; i < count; i++)
        {
            Assert.Equal(i % 100 != 99, results[i].Succeeded);
            if (results[i].Succeeded)
            {
                Assert.Equal($"Big {i}", results[i].Stored!.Name);
            }
        }

        var good = results.Count(r => r.Succeeded);
        Assert.Equal(good, await engine.Store.Customers.CountAsync());
        var feed = await engine.Store.Changes.ReadAsync(0, 100_000);
        Assert.Equal(Enumerable.Range(1, good).Select(i => (long)i), feed.Select(c => c.Sequence));
        // Sequences follow the order of the call.
        Assert.Equal(results.Where(r => r.Succeeded).Select(r => r.Stored!.Id), feed.Select(c => c.EntityId));
    }

    [Fact]
    public async Task A_batch_from_inside_a_handler_joins_the_open_transaction()
    {
        using var engine = new TestEngine();
        using var _ = engine.On<Customer>("sales", PipelineStage.PostOperation, async (e, ct) =>
        {
            var notes = Enumerable.Range(0, 3)
                .Select(i => new BulkWrite<Activity>(BulkOperation.Create, new Activity { CustomerId = e.EntityId, Subject = $"step {i}" }))
                .ToList();
            var outcome = await engine.Store.Activities.WriteManyAsync(notes, ct);
            if (outcome.Any(o => !o.Succeeded))
            {
                throw new InvalidOperationException("a note was refused");
            }

            if (e.After!.Name == "roll back")
            {
                throw new InvalidOperationException("refused after the notes");
            }
        });

        var kept = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("keep"));
        await Assert.ThrowsAsync<HandlerFailedException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("roll back")));

        var activities = await engine.Store.Activities.ListAsync(100);
        Assert.Equal(3, activities.Count);
        Assert.All(activities, a => Assert.Equal(kept.Id, a.CustomerId));
    }

    [Fact]
    public async Task A_record_missing_from_a_batch_is_reported_and_the_others_are_stored()
    {
        using var engine = new TestEngine();
        var results = await engine.Store.Customers.WriteManyAsync(
        [
            new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer("A")),
            new BulkWrite<Customer>(BulkOperation.Create, null!),
            new BulkWrite<Customer>(BulkOperation.Update, TestEngine.NewCustomer("no id")),
            new BulkWrite<Customer>(BulkOperation.Create, TestEngine.NewCustomer("B")),
        ]);

        Assert.True(results[0].Succeeded);
        Assert.IsType<ArgumentNullException>(results[1].Error);
        Assert.Contains("Id", Assert.IsType<ValidationException>(results[2].Error).Message, StringComparison.Ordinal);
        Assert.True(results[3].Succeeded);
        Assert.Equal(2, await engine.Store.Customers.CountAsync());
    }

    /// <summary>
    /// Without pre-operation handlers the writer stores the caller's record as mapped on the caller's thread plus the
    /// stamped fields; the stored document must be exactly what mapping the stored image gives, for every path.
    /// </summary>
    [Fact]
    public async Task Stored_documents_equal_the_mapping_of_the_stored_image_on_every_write_path()
    {
        using var engine = new TestEngine();
        Customer Rich(string name) => new()
        {
            Name = name, Emails = [name.ToLowerInvariant() + "@example.test"], Phones = ["+49 30 1234"], Tags = ["b2b", "Key"],
            Owner = "rep:7", CreditLimit = 1234.56m, ExternalIds = { ["erp"] = name },
            Addresses = [new Address { Line1 = "Hauptstraße 1", PostalCode = "10115", City = "Berlin" }],
            Contacts = [new ContactPerson { Name = "Anna", Email = "anna@example.test" }],
            Custom = { ["since"] = CustomValue.Of(new DateTimeOffset(2020, 2, 29, 8, 30, 0, TimeSpan.FromHours(1))), ["vip"] = CustomValue.Of(true) },
        };

        var single = await engine.Store.Customers.CreateAsync(Rich("Single"));
        var many = await engine.Store.Customers.CreateManyAsync([Rich("ManyA"), Rich("ManyB")]);
        var bulk = await engine.Store.Customers.WriteManyAsync([new BulkWrite<Customer>(BulkOperation.Create, Rich("Bulk"))]);
        var edit = (await engine.Store.Customers.GetAsync(single.Id))!;
        edit.Tags.Add("vip");
        edit.Addresses[0].City = "Potsdam";
        var updated = await engine.Store.Customers.UpdateAsync(edit);
        var bulkEdit = (await engine.Store.Customers.GetAsync(many[0].Id))!;
        bulkEdit.Name = "ManyA2";
        var bulkUpdated = await engine.Store.Customers.WriteManyAsync([new BulkWrite<Customer>(BulkOperation.Update, bulkEdit)]);

        var col = engine.Database.Database.GetCollection("customers");
        foreach (var image in new[] { updated, many[1], bulk[0].Stored!, bulkUpdated[0].Stored! })
        {
            var stored = col.FindById(image.Id);
            var expected = engine.Pipeline.ToDocument(CoreEntities.Customer, image);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
            foreach (var key in expected.Keys)
            {
                Assert.Equal(LiteDB.JsonSerializer.Serialize(expected[key]), LiteDB.JsonSerializer.Serialize(stored[key]));
            }
        }

        Assert.Equal("ManyA2", (await engine.Store.Customers.GetAsync(many[0].Id))!.Name);
        Assert.Equal(2, updated.Version);
    }
}
