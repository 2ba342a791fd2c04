using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Core.Tests;

public class ChangeFeedAndAuditTests
{
    [Fact]
    public async Task The_change_feed_is_ordered_and_gap_free_including_deletes_and_failed_writes()
    {
        using var engine = new TestEngine();
        var a = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("A"));
        var b = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("B"));
        await Assert.ThrowsAsync<ValidationException>(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("")));
        a.Name = "A2";
        a = await engine.Store.Customers.UpdateAsync(a);
        await Assert.ThrowsAsync<ConcurrencyException>(() => engine.Store.Customers.DeleteAsync(b.Id, 7));
        await engine.Store.Customers.DeleteAsync(b.Id);

        var all = await engine.Store.Changes.ReadAsync(0);

        Assert.Equal([1L, 2L, 3L, 4L], all.Select(c => c.Sequence));
        Assert.Equal(
            [(a.Id, ChangeOperation.Create, 1L), (b.Id, ChangeOperation.Create, 1L), (a.Id, ChangeOperation.Update, 2L), (b.Id, ChangeOperation.Delete, 2L)],
            all.Select(c => (c.EntityId, c.Operation, c.Version)));
        Assert.All(all, c => Assert.Equal("user:alice", c.Actor));
        Assert.All(all, c => Assert.Equal(EntityNames.Customer, c.Entity));
        Assert.Equal(4, await engine.Store.Changes.LastSequenceAsync());

        var page = await engine.Store.Changes.ReadAsync(2, limit: 1);
        Assert.Equal(3, Assert.Single(page).Sequence);
    }

    [Fact]
    public async Task Many_concurrent_writers_get_distinct_consecutive_sequences()
    {
        using var engine = new TestEngine();
        await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => engine.Store.Customers.CreateAsync(TestEngine.NewCustomer($"C{i}")))));
        var all = await engine.Store.Changes.ReadAsync(0);
        Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), all.Select(c => c.Sequence));
        Assert.Equal(50, all.Select(c => c.EntityId).Distinct().Count());
    }

    [Fact]
    public async Task The_audit_log_keeps_field_level_before_and_after_with_the_actor()
    {
        using var engine = new TestEngine();
        var c = await engine.Store.Customers.CreateAsync(new Customer { Name = "李雷", Owner = "rep:1", Tags = ["a"] });

        var bob = engine.Provider.ForActor("user:bob");
        var edit = await bob.Customers.GetAsync(c.Id);
        edit!.Owner = "rep:2";
        edit.Tags.Add("b");
        edit.Profile.Region = "华东";
        await bob.Customers.UpdateAsync(edit);
        await bob.Customers.DeleteAsync(c.Id);

        var history = await engine.Store.Audit.ForEntityAsync(EntityNames.Customer, c.Id);

        Assert.Equal([ChangeOperation.Create, ChangeOperation.Update, ChangeOperation.Delete], history.Select(h => h.Operation));
        Assert.Equal(["user:alice", "user:bob", "user:bob"], history.Select(h => h.Actor));
        Assert.Contains(history[0].Changes, f => f is { Field: "Name", Before: null, After: "\"李雷\"" });

        var update = history[1].Changes.ToDictionary(f => f.Field);
        Assert.Equal(("\"rep:1\"", "\"rep:2\""), (update["Owner"].Before, update["Owner"].After));
        Assert.Equal(("[\"a\"]", "[\"a\",\"b\"]"), (update["Tags"].Before, update["Tags"].After));
        Assert.Equal((null, "\"华东\""), (update["Profile.Region"].Before, update["Profile.Region"].After));
        Assert.Equal(("1", "2"), (update["Version"].Before, update["Version"].After));
        Assert.False(update.ContainsKey("Name"));
        Assert.DoesNotContain(update.Keys, k => k.StartsWith("_ix", StringComparison.Ordinal));

        Assert.Contains(history[2].Changes, f => f is { Field: "Owner", Before: "\"rep:2\"", After: null });
        Assert.Equal(history.Select(h => h.Sequence), (await engine.Store.Changes.ReadAsync(0)).Select(r => r.Sequence));
    }

    [Fact]
    public async Task Audit_values_are_valid_json_text_even_with_quotes_and_line_breaks()
    {
        using var engine = new TestEngine();
        const string name = "Say \"hi\"\n\\ 你好\t!";
        var c = await engine.Store.Customers.CreateAsync(new Customer { Name = name, CreditLimit = 12.50m, Blacklisted = false });
        var created = Assert.Single(await engine.Store.Audit.ForEntityAsync(EntityNames.Customer, c.Id));
        var fields = created.Changes.ToDictionary(f => f.Field, f => f.After);

        Assert.Equal(name, System.Text.Json.JsonSerializer.Deserialize<string>(fields["Name"]!));
        Assert.Equal(12.50m, System.Text.Json.JsonSerializer.Deserialize<decimal>(fields["CreditLimit"]!));
        Assert.Equal("false", fields["Blacklisted"]);
        Assert.Equal(c.Id, System.Text.Json.JsonSerializer.Deserialize<string>(fields["Id"]!));
    }

    [Fact]
    public async Task A_create_is_audited_as_its_image_once_and_reads_as_every_field_it_set()
    {
        using var engine = new TestEngine();
        var c = await engine.Store.Customers.CreateAsync(new Customer
        {
            Name = "Müller AG", Emails = ["a@x.test"], Tags = ["b2b"], Addresses = [new Address { City = "Köln", PostalCode = "50667" }],
        });

        // Stored: the image once (no field list, no look-up keys), not a diff against nothing.
        var stored = engine.Database.Database.GetCollection(CrmEngine.Core.Storage.CrmDatabase.AuditCollection)
            .FindById(CrmEngine.Core.Storage.AuditLog.Key(EntityNames.Customer, c.Id, 1));
        Assert.False(stored.ContainsKey("changes"));
        Assert.Equal("Müller AG", stored["after"]["Name"].AsString);
        Assert.False(stored["after"].AsDocument.ContainsKey("_ix"));

        // Read: exactly what a field-level diff of the create lists (every field set, no before side).
        var created = Assert.Single(await engine.Store.Audit.ForEntityAsync(EntityNames.Customer, c.Id));
        var expected = CrmEngine.Core.Storage.AuditDiff.Compute(null, engine.Database.Mapper.ToDocument(c));
        Assert.Equal(expected.OrderBy(f => f.Field, StringComparer.Ordinal), created.Changes.OrderBy(f => f.Field, StringComparer.Ordinal));
        Assert.Contains(created.Changes, f => f is { Field: "Addresses[0].City", Before: null, After: "\"Köln\"" });
        Assert.Contains(created.Changes, f => f is { Field: "Tags", After: "[\"b2b\"]" });
        Assert.All(created.Changes, f => Assert.Null(f.Before));
    }
}
