using System.Text.Json;
using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.DataExchange.Customers;
using CrmEngine.Rules;
using CrmEngine.Rules.Scripting;
using CrmEngine.Rules.Segments;
using CrmEngine.Security;
using Microsoft.Extensions.Options;

namespace CrmEngine.DataExchange.Tests;

/// <summary>
/// Record access on the records that hang off a customer (issue #9): a merge moves activities, orders and consent entries
/// (a write on each), a per-customer export shows them (a read on each), as the acting user of the real access model.
/// </summary>
public sealed class RecordAccessTests
{
    private const string Seed = """
        {
          "protectedFields": { "activity": ["body"], "customer": ["overdueAmount"] },
          "units": [ { "id": "org", "name": "Org" }, { "id": "north", "name": "North", "parent": "org" }, { "id": "south", "name": "South", "parent": "org" } ],
          "roles": [
            { "id": "mgr", "name": "Manager", "privileges": {
                "customer": "read:all write:all delete:all export:all", "activity": "read:unit write:unit",
                "order": "read:unit write:unit", "consent": "read:all" } },
            { "id": "consents", "name": "Consent desk", "privileges": { "consent": "write:all" } },
            { "id": "own", "name": "Own customers", "privileges": {
                "customer": "read:own write:own delete:own export:own", "activity": "read:own write:own", "order": "read:own", "consent": "read:all" } }
          ],
          "users": [
            { "id": "anna", "name": "Anna", "unit": "north" },
            { "id": "ben", "name": "Ben", "unit": "south" },
            { "id": "mia", "name": "Mia", "unit": "north", "roles": ["mgr"] },
            { "id": "olga", "name": "Olga", "unit": "north", "roles": ["mgr", "consents"] },
            { "id": "sam", "name": "Sam", "unit": "north", "roles": ["own"] }
          ]
        }
        """;

    private static async Task<(Engine Engine, SecurityAdministration Admin)> StartAsync()
    {
        var engine = await Engine.StartAsync();
        var admin = new SecurityAdministration(new SecurityDirectory(engine.Get<IStoreProvider>()));
        await admin.SeedAsync(SeedFile.Parse(Seed, "seed.json"), "test");
        return (engine, admin);
    }

    private static async Task<string> StateAsync(Engine engine, params string[] customers)
    {
        var store = engine.Store();
        var parts = new List<string>();
        foreach (var id in customers)
        {
            parts.Add(JsonSerializer.Serialize(await store.Customers.GetAsync(id)));
            parts.Add(JsonSerializer.Serialize(await store.Activities.FindAllAsync(id, default)));
            parts.Add(JsonSerializer.Serialize(await store.Orders.FindAllAsync(id, default)));
            parts.Add(JsonSerializer.Serialize(await store.Consents.FindAllAsync(id, default)));
        }

        return string.Join("\n", parts);
    }

    [Fact]
    public async Task A_merge_is_refused_when_the_user_may_not_write_a_record_it_would_move_and_nothing_changes()
    {
        var (engine, admin) = await StartAsync();
        await using var _ = engine;
        var store = engine.Store();
        var keep = await store.Customers.CreateAsync(new Customer { Name = "Keep GmbH", Owner = "anna" });
        var remove = await store.Customers.CreateAsync(new Customer { Name = "Keep G.m.b.H.", Owner = "anna" });
        var annas = await store.Activities.CreateAsync(new Activity { CustomerId = remove.Id, Subject = "Anna's call", Owner = "anna" });
        var bens = await store.Activities.CreateAsync(new Activity { CustomerId = remove.Id, Subject = "Ben's call", Owner = "ben" });
        var order = await store.Orders.CreateAsync(new Order { CustomerId = remove.Id, Owner = "ben", Lines = [new OrderLine { Description = "Widget", Quantity = 1, UnitPrice = 5 }] });
        await store.Consents.CreateAsync(new ConsentEntry { CustomerId = remove.Id, Purpose = "newsletter", Granted = true, Source = "web form" });
        var merger = engine.Get<CustomerMerger>();
        var before = await StateAsync(engine, keep.Id, remove.Id);

        // Mia (unit north) may write and delete both customers, but not Ben's activity (south): refused, naming it.
        var mia = await admin.ContextForAsync("mia");
        var ex = await Assert.ThrowsAsync<CustomerOperationException>(() => merger.MergeAsync(keep.Id, remove.Id, false, "mia", access: mia));
        Assert.True(ex.Forbidden);
        Assert.Equal("activity:write", ex.Denial!.Value.Missing);
        Assert.Contains($"activity {bens.Id} of customer {remove.Id}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, await StateAsync(engine, keep.Id, remove.Id));

        // Ben's activity passes to Anna; then Ben's order stops the merge.
        await ToAnnaAsync(store.Activities, bens.Id, a => a.Owner = "anna");
        before = await StateAsync(engine, keep.Id, remove.Id);
        ex = await Assert.ThrowsAsync<CustomerOperationException>(() => merger.MergeAsync(keep.Id, remove.Id, false, "mia", access: mia));
        Assert.Equal("order:write", ex.Denial!.Value.Missing);
        Assert.Contains($"order {order.Id}", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, await StateAsync(engine, keep.Id, remove.Id));
        await ToAnnaAsync(store.Orders, order.Id, o => o.Owner = "anna");
        before = await StateAsync(engine, keep.Id, remove.Id);

        // Consent entries are the customer's own ledger and follow it (write on the kept + delete on the removed
        // customer is enough): with the activity and the order hers to write, Mia's merge goes through.
        var result = await merger.MergeAsync(keep.Id, remove.Id, false, "mia", access: mia);
        Assert.Equal((2, 1, 1), (result.MovedActivities, result.MovedOrders, result.MovedConsents));
        Assert.Null(await store.Customers.GetAsync(remove.Id));
        Assert.Equal(keep.Id, (await store.Activities.GetAsync(annas.Id))!.CustomerId);

        static async Task ToAnnaAsync<T>(IEntitySet<T> set, string id, Action<T> reassign)
            where T : class, IEntity, new()
        {
            var record = (await set.GetAsync(id))!;
            reassign(record);
            await set.UpdateAsync(record);
        }
    }

    [Fact]
    public async Task A_record_given_to_another_owner_after_the_merges_check_is_not_moved_the_check_is_repeated_as_it_is_written()
    {
        var (engine, admin) = await StartAsync();
        await using var _ = engine;
        var store = engine.Store();
        var keep = await store.Customers.CreateAsync(new Customer { Name = "Race GmbH", Owner = "anna" });
        var remove = await store.Customers.CreateAsync(new Customer { Name = "Race GmbH", Owner = "anna", Phones = ["+49 30 1234"] });
        var visit = await store.Activities.CreateAsync(new Activity { CustomerId = remove.Id, Subject = "Anna's visit", Owner = "anna" });

        // Between the merge's check (Mia may write Anna's visit) and the move, the visit is given to Ben (south): here a
        // handler does it in the same transaction as the merge's first write (the kept card taking the phone number).
        using var race = engine.Get<IWriteHandlerRegistry>().Register(HandlerRegistration.Create<Customer>("test", EntityNames.Customer,
            PipelineStage.PostOperation, 0, "test:give-visit-to-ben", async (e, ct) =>
            {
                var taken = (await engine.Store("test").Activities.GetAsync(visit.Id, ct))!;
                taken.Owner = "ben";
                await engine.Store("test").Activities.UpdateAsync(taken, ct);
            }, (operation, actor) => operation == ChangeOperation.Update && actor == "merge:mia"));

        var mia = await admin.ContextForAsync("mia");
        var ex = await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerMerger>().MergeAsync(keep.Id, remove.Id, false, "mia", access: mia));
        Assert.True(ex.Forbidden);
        Assert.Equal("activity:write", ex.Denial!.Value.Missing);
        Assert.Contains($"activity {visit.Id} of customer {remove.Id}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("changed while the merge ran", ex.Message, StringComparison.Ordinal);

        // Ben's visit stayed where it was, untouched by Mia; the removed customer is still there.
        var stored = (await store.Activities.GetAsync(visit.Id))!;
        Assert.Equal((remove.Id, "ben"), (stored.CustomerId, stored.Owner));
        Assert.DoesNotContain(await store.Audit.ForEntityAsync(EntityNames.Activity, visit.Id), a => a.Actor == "merge:mia");
        Assert.NotNull(await store.Customers.GetAsync(remove.Id));
    }

    [Fact]
    public async Task An_erase_is_refused_when_the_user_may_not_write_an_activity_it_would_clear_and_nothing_changes()
    {
        var (engine, admin) = await StartAsync();
        await using var _ = engine;
        var store = engine.Store();
        var customer = await store.Customers.CreateAsync(new Customer { Name = "Erase Me", Owner = "anna", Emails = ["erase@me.example"] });
        await store.Activities.CreateAsync(new Activity { CustomerId = customer.Id, Subject = "Anna's call", Owner = "anna" });
        var bens = await store.Activities.CreateAsync(new Activity { CustomerId = customer.Id, Subject = "Ben's call", Body = "BEN-NOTE", Owner = "ben" });
        // Another unit's order on the customer: an erase does not touch orders, so it does not stop Mia.
        await store.Orders.CreateAsync(new Order { CustomerId = customer.Id, Owner = "ben", Lines = [new OrderLine { Description = "Widget", Quantity = 1, UnitPrice = 5 }] });
        await store.Consents.CreateAsync(new ConsentEntry { CustomerId = customer.Id, Purpose = "newsletter", Granted = true, Source = "web form" });
        var eraser = engine.Get<CustomerEraser>();
        var before = await StateAsync(engine, customer.Id);
        var auditBefore = JsonSerializer.Serialize(await store.Audit.ForEntityAsync(EntityNames.Customer, customer.Id));

        // Mia (north) may delete the customer, but not write Ben's activity (south): refused, naming it; nothing changes.
        var mia = await admin.ContextForAsync("mia");
        var ex = await Assert.ThrowsAsync<CustomerOperationException>(() => eraser.EraseAsync(customer.Id, "GDPR request", "mia", access: mia));
        Assert.True(ex.Forbidden);
        Assert.Equal("activity:write", ex.Denial!.Value.Missing);
        Assert.Contains($"activity {bens.Id} of customer {customer.Id}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing was changed", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, await StateAsync(engine, customer.Id));
        Assert.Equal(auditBefore, JsonSerializer.Serialize(await store.Audit.ForEntityAsync(EntityNames.Customer, customer.Id)));
        Assert.Null(await engine.Get<IStoreProvider>().ForActor("test", CustomerRedirects.Owner).Collection<ErasureRecord>(CustomerEraser.Collection).GetAsync(customer.Id));

        // With Ben's activity in her unit, Mia's erase goes through (the order is left as it is; the consent entry follows).
        var activity = (await store.Activities.GetAsync(bens.Id))!;
        activity.Owner = "anna";
        await store.Activities.UpdateAsync(activity);
        var result = await eraser.EraseAsync(customer.Id, "GDPR request", "mia", access: mia);
        Assert.Equal((2, 1), (result.Activities, result.Consents));
        Assert.Equal(CustomerEraser.Erased, (await store.Customers.GetAsync(customer.Id))!.Name);
        Assert.Null((await store.Activities.GetAsync(bens.Id))!.Body);

        // The machine operator (no user) erases whatever the records' owners.
        var other = await store.Customers.CreateAsync(new Customer { Name = "Other", Owner = "anna" });
        await store.Activities.CreateAsync(new Activity { CustomerId = other.Id, Subject = "Ben's other call", Owner = "ben" });
        Assert.Equal(1, (await eraser.EraseAsync(other.Id, "GDPR request", "operator")).Activities);
    }

    [Fact]
    public async Task A_merged_away_id_names_the_kept_customer_only_to_a_caller_who_may_read_it()
    {
        var (engine, admin) = await StartAsync();
        await using var _ = engine;
        var store = engine.Store();
        var kept = await store.Customers.CreateAsync(new Customer { Name = "Ben Kept", Owner = "ben" });
        var removed = await store.Customers.CreateAsync(new Customer { Name = "Ben Removed", Owner = "ben" });
        var sams = await store.Customers.CreateAsync(new Customer { Name = "Sam's", Owner = "sam" });
        await engine.Get<CustomerMerger>().MergeAsync(kept.Id, removed.Id, false, "operator");
        var sam = await admin.ContextForAsync("sam");

        // Sam cannot read Ben's kept customer: the old id is unknown to him in every operation, and the kept id never shows.
        var refusals = new List<CustomerOperationException>
        {
            await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerDataExport>().ExportJsonAsync(removed.Id, access: sam)),
            await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerEraser>().EraseAsync(removed.Id, "GDPR", "sam", access: sam)),
            await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerMerger>().MergeAsync(removed.Id, sams.Id, false, "sam", access: sam)),
            await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerMerger>().MergeAsync(sams.Id, removed.Id, false, "sam", access: sam)),
        };
        foreach (var ex in refusals)
        {
            Assert.True(ex.NotFound, ex.Message);
            Assert.Contains($"customer {removed.Id}", ex.Message, StringComparison.Ordinal);
            Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(kept.Id, ex.Message, StringComparison.Ordinal);
        }

        // Mia reads every customer (and the operator is the machine): both are pointed to the kept customer.
        var miasAccess = await admin.ContextForAsync("mia");
        var mia = await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerDataExport>().ExportJsonAsync(removed.Id, access: miasAccess));
        Assert.Contains($"was merged into {kept.Id}", mia.Message, StringComparison.Ordinal);
        var operatorsAnswer = await Assert.ThrowsAsync<CustomerOperationException>(() => engine.Get<CustomerEraser>().EraseAsync(removed.Id, "GDPR", "operator"));
        Assert.Contains($"was merged into {kept.Id}", operatorsAnswer.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_customers_export_as_a_user_shows_only_segments_whose_rule_reads_nothing_hidden_from_them_and_masks_every_part()
    {
        var (engine, admin) = await StartAsync();
        await using var _ = engine;
        var store = engine.Store();
        var customer = await store.Customers.CreateAsync(new Customer { Name = "Sam Kunde", Owner = "sam", OverdueAmount = 4711 });
        var removed = await store.Customers.CreateAsync(new Customer { Name = "Sam Kunde", Owner = "sam", OverdueAmount = 815 });
        await store.Activities.CreateAsync(new Activity { CustomerId = customer.Id, Subject = "Sam's visit", Owner = "sam" });
        // A confirmed order counts in the figures (a draft would not, and would tell nothing).
        await store.Orders.CreateAsync(new Order
        {
            CustomerId = customer.Id, Owner = "ben", Status = OrderStatus.Confirmed, Lines = [new OrderLine { Description = "Gadget", Quantity = 2, UnitPrice = 7 }],
        });
        await engine.Get<CustomerMerger>().MergeAsync(customer.Id, removed.Id, false, "operator");

        var scripts = new Dictionary<string, string>
        {
            ["owing"] = "return customer.overdueAmount > 100;",
            ["big-spender"] = "return customer.totalSpent > 10;",
            ["visited"] = "return customer.activityCount > 0;",
            ["named"] = "return customer.name.length > 3;",
            ["opaque"] = "const c = customer; return c.name !== null;",
        };
        var members = engine.Get<IStoreProvider>().ForActor("test", "rules").Collection<SegmentMember>("segment_members");
        foreach (var segment in scripts.Keys.Append("retired"))
        {
            await members.CreateAsync(new SegmentMember
            {
                Id = SegmentMember.IdOf(segment, customer.Id), Segment = segment, CustomerId = customer.Id, ScriptHash = "h-" + segment,
            });
        }

        // The rules engine's own judgement (as over the API): a segment service over these scripts, not started.
        using var rules = new JsRuleEngine(Options.Create(new RulesOptions()), TimeProvider.System);
        Directory.CreateDirectory(engine.File("rules/segments"));
        foreach (var (name, code) in scripts)
        {
            await File.WriteAllTextAsync(engine.File($"rules/segments/{name}.js"), code);
        }

        using var catalog = new RuleCatalog(rules, engine.File("rules"));
        Assert.Empty(catalog.Reload());

        using var segments = new SegmentService(rules, catalog, engine.Get<IStoreProvider>(), Options.Create(new RulesOptions()));
        var export = new CustomerDataExport(engine.Get<IStoreProvider>(), engine.Get<CrmDatabase>(), null, () => segments);
        var json = await export.ExportJsonAsync(customer.Id, access: await admin.ContextForAsync("sam"));
        var doc = JsonNode.Parse(json)!;

        // Overdue amount is hidden from Sam: "owing" would tell it; Ben's order is left out: "big-spender" would tell its
        // amount; "opaque" cannot be told what it reads and "retired" has no script any more. His activity is shown.
        var shown = doc["segments"]!.AsArray().Select(m => m!["segment"]!.GetValue<string>()).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["named", "visited"], shown);
        Assert.Equal(4, doc["leftOut"]!["segments"]!.GetValue<int>());
        Assert.Equal(1, doc["leftOut"]!["orders"]!.GetValue<int>());
        foreach (var secret in new[] { "owing", "big-spender", "opaque", "retired" })
        {
            Assert.DoesNotContain($"\"{secret}\"", json, StringComparison.Ordinal);
        }

        // No value anywhere in the export (numbers, or texts such as audit images) is one of the hidden amounts; digits
        // inside ids and timestamps are not amounts, so the values are compared, not substrings.
        var values = LeafAmounts(doc).ToList();
        foreach (var amount in new[] { 4711m, 815m, 5526m })
        {
            Assert.DoesNotContain(amount, values);
        }

        // Sam may read the customer the removed id was merged into, as the API's redirect asks: the id is listed.
        Assert.Equal(removed.Id, Assert.Single(doc["mergedFrom"]!.AsArray())!["id"]!.GetValue<string>());

        // The machine operator gets every membership and the amounts.
        var all = JsonNode.Parse(await export.ExportJsonAsync(customer.Id))!;
        Assert.Equal(6, all["segments"]!.AsArray().Count);
        Assert.Equal(5526m, all["customer"]!["overdueAmount"]!.GetValue<decimal>());
        Assert.Contains(5526m, LeafAmounts(all));   // the value comparison above does find amounts where they are shown
    }

    /// <summary>Every number in the document, and every text that reads as a number (audit images hold JSON texts).</summary>
    private static IEnumerable<decimal> LeafAmounts(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var amount in obj.SelectMany(p => LeafAmounts(p.Value)))
                {
                    yield return amount;
                }

                break;
            case JsonArray array:
                foreach (var amount in array.SelectMany(LeafAmounts))
                {
                    yield return amount;
                }

                break;
            case JsonValue value when value.TryGetValue<decimal>(out var number):
                yield return number;
                break;
            case JsonValue value when value.TryGetValue<string>(out var text)
                                      && decimal.TryParse(text.Trim('"'), System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var parsed):
                yield return parsed;
                break;
        }
    }

    [Fact]
    public async Task A_customers_export_leaves_out_records_the_user_may_not_read_says_how_many_and_hides_protected_fields()
    {
        var (engine, admin) = await StartAsync();
        await using var _ = engine;
        var store = engine.Store();
        var customer = await store.Customers.CreateAsync(new Customer { Name = "Export AG", Owner = "anna" });
        var annas = await store.Activities.CreateAsync(new Activity { CustomerId = customer.Id, Subject = "Anna's visit", Body = "SECRET-NOTE", Owner = "anna" });
        var bens = await store.Activities.CreateAsync(new Activity { CustomerId = customer.Id, Subject = "Ben's visit", Body = "BEN-NOTE", Owner = "ben" });
        var bensOrder = await store.Orders.CreateAsync(new Order { CustomerId = customer.Id, Owner = "ben", Lines = [new OrderLine { Description = "Gadget", Quantity = 2, UnitPrice = 7 }] });
        var update = (await store.Activities.GetAsync(annas.Id))!;
        update.Body = "SECRET-NOTE-2";
        await store.Activities.UpdateAsync(update);
        var export = engine.Get<CustomerDataExport>();

        var json = await export.ExportJsonAsync(customer.Id, access: await admin.ContextForAsync("mia"));
        var doc = JsonNode.Parse(json)!;
        var activity = Assert.Single(doc["activities"]!.AsArray())!;
        Assert.Equal(annas.Id, activity["id"]!.GetValue<string>());
        Assert.Equal("Anna's visit", activity["subject"]!.GetValue<string>());
        Assert.Null(activity.AsObject()["body"]);
        Assert.Empty(doc["orders"]!.AsArray());
        Assert.Equal(1, doc["leftOut"]!["activities"]!.GetValue<int>());
        Assert.Equal(1, doc["leftOut"]!["orders"]!.GetValue<int>());
        Assert.Equal(0, doc["leftOut"]!["consents"]!.GetValue<int>());
        foreach (var hidden in new[] { bens.Id, bensOrder.Id, "SECRET-NOTE", "BEN-NOTE", "Gadget" })
        {
            Assert.DoesNotContain(hidden, json, StringComparison.Ordinal);
        }

        // Anna's activity keeps its history, without the hidden field's changes.
        Assert.Contains(doc["audit"]!.AsArray(), a => a!["entityId"]!.GetValue<string>() == annas.Id);

        // The machine operator (no user) gets everything and no leftOut.
        var all = await export.ExportJsonAsync(customer.Id);
        var full = JsonNode.Parse(all)!;
        Assert.Equal(2, full["activities"]!.AsArray().Count);
        Assert.Single(full["orders"]!.AsArray());
        Assert.Null(full["leftOut"]);
        Assert.Contains("SECRET-NOTE-2", all, StringComparison.Ordinal);
    }
}
