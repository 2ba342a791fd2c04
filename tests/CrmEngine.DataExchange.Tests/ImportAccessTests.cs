using System.Text;
using System.Text.Json;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Customers;
using CrmEngine.Security;

namespace CrmEngine.DataExchange.Tests;

/// <summary>
/// Import as a user (issue #9, review finding 3): the access decision comes before any comparison, so neither the counts
/// nor the reject reasons tell a guessed value, an id, a name or an external id of a customer the user may not read, and
/// no row creates a second customer beside one the user cannot see or takes an id that exists or was merged away.
/// </summary>
public sealed class ImportAccessTests
{
    private const string Seed = """
        {
          "protectedFields": { "customer": ["overdueAmount", "creditLevel"] },
          "units": [ { "id": "org", "name": "Org" } ],
          "roles": [
            { "id": "sales", "name": "Salesperson", "privileges": { "customer": "create:own read:own write:own" },
              "fields": { "customer.creditLevel": "read" } },
            { "id": "admin", "name": "Administrator", "privileges": { "*": "create:all read:all write:all delete:all assign:all export:all" },
              "fields": { "*.*": "read write" } }
          ],
          "users": [
            { "id": "anna", "name": "Anna", "unit": "org", "roles": ["sales"] },
            { "id": "bob", "name": "Bob", "unit": "org", "roles": ["sales"] },
            { "id": "root", "name": "Root", "unit": "org", "roles": ["admin"] }
          ]
        }
        """;

    private sealed record World(Engine Engine, SecurityAdministration Admin, Customer Bobs, Customer Annas, string Gone);

    private static async Task<World> StartAsync()
    {
        var engine = await Engine.StartAsync();
        var admin = new SecurityAdministration(new SecurityDirectory(engine.Get<IStoreProvider>()));
        await admin.SeedAsync(SeedFile.Parse(Seed, "seed.json"), "test");
        var store = engine.Store();
        var bobs = await store.Customers.CreateAsync(new Customer
        {
            Name = "Rival Holding GmbH", Owner = "bob", OverdueAmount = 4711.5m, CreditLevel = "C",
            Emails = ["ceo@rival.example"], Phones = ["+49 30 1234567"], ExternalIds = { ["erp"] = "K-99812" },
        });
        var annas = await store.Customers.CreateAsync(new Customer { Name = "Anna Own AG", Owner = "anna", OverdueAmount = 12m, CreditLevel = "B" });
        // A customer of Bob's merged into another of his: its id now redirects to a customer Anna cannot read.
        var keep = await store.Customers.CreateAsync(new Customer { Name = "Kept KG", Owner = "bob" });
        var gone = await store.Customers.CreateAsync(new Customer { Name = "Gone KG", Owner = "bob" });
        await engine.Get<CustomerMerger>().MergeAsync(keep.Id, gone.Id, false, "test");
        return new World(engine, admin, bobs, annas, gone.Id);
    }

    private static async Task<ImportSummary> ImportAsync(World w, string csv, string? user, bool dryRun = false) =>
        await w.Engine.Get<CustomerImporter>().ImportAsync(new MemoryStream(Encoding.UTF8.GetBytes(csv)), "in.csv", new ImportRequest
        {
            DryRun = dryRun,
            User = user ?? "cli",
            Access = user is null ? null : await w.Admin.ContextForAsync(user),
        });

    private static async Task<string> StoreTextAsync(World w) =>
        JsonSerializer.Serialize(await w.Engine.AllCustomersAsync());

    [Fact]
    public async Task A_guessed_hidden_value_is_refused_alike_whether_right_or_wrong_on_any_customer_and_in_a_dry_run()
    {
        var w = await StartAsync();
        await using var _ = w.Engine;
        var before = await StoreTextAsync(w);

        foreach (var dryRun in new[] { true, false })
        {
            // Right and wrong guesses of Bob's hidden amount, and of Anna's own (hidden from her too).
            var summary = await ImportAsync(w,
                $"id,overdueAmount\n{w.Bobs.Id},100\n{w.Bobs.Id},4711.5\n{w.Annas.Id},12\n{w.Annas.Id},13\n", "anna", dryRun);
            Assert.Equal(0, summary.Unchanged);
            Assert.Equal(0, summary.Updated);
            Assert.Equal(4, summary.Rejected);
            Assert.Single(summary.FirstRejects.Select(r => r.Reason.Replace(w.Bobs.Id, "").Replace(w.Annas.Id, "")).Distinct());
            Assert.All(summary.FirstRejects, r => Assert.Contains("customer.overdueAmount:write", r.Reason, StringComparison.Ordinal));
        }

        Assert.Equal(before, await StoreTextAsync(w));
    }

    [Fact]
    public async Task A_row_meeting_a_customer_the_user_cannot_read_is_refused_like_an_unknown_id_and_creates_nothing()
    {
        var w = await StartAsync();
        await using var _ = w.Engine;
        var before = await StoreTextAsync(w);

        // By id (Bob's, one nobody has, a merged-away one), external id, e-mail, and an e-mail Block duplicate via a contact.
        var csv = "id,name,emails,externalId.erp\n" +
                  $"{w.Bobs.Id},Probe One,,\n" +
                  "01ZZZZZZZZZZZZZZZZZZZZZZZZ,Probe Two,,\n" +
                  $"{w.Gone},Probe Three,,\n" +
                  ",Probe Four,,K-99812\n" +
                  ",Probe Five,ceo@rival.example,\n";
        foreach (var dryRun in new[] { true, false })
        {
            var summary = await ImportAsync(w, csv, "anna", dryRun);
            Assert.Equal(5, summary.Rejected);
            Assert.Equal(0, summary.Created + summary.Updated + summary.Unchanged);
            var reason = Assert.Single(summary.FirstRejects.Select(r => r.Reason).Distinct());
            Assert.Equal(ImportRequest.NotYours("anna"), reason);
            Assert.All(summary.FirstRejects, r => Assert.Equal("access", r.Column));
            foreach (var secret in new[] { w.Bobs.Id, "Rival", "K-99812", "4711.5", "bob" })
            {
                Assert.DoesNotContain(secret, reason, StringComparison.Ordinal);
            }
        }

        Assert.Equal(before, await StoreTextAsync(w));
        Assert.Null(await w.Engine.Store().Customers.GetAsync(w.Gone)); // the merged-away id was not taken
    }

    [Fact]
    public async Task A_users_new_customers_get_engine_ids_and_duplicate_marks_name_only_readable_customers()
    {
        var w = await StartAsync();
        await using var _ = w.Engine;

        // Bob's phone (Warn rule): created, but not marked as a duplicate of a customer Anna cannot see. Her own rows work.
        var summary = await ImportAsync(w,
            $"id,name,phones,creditLevel\n,Fresh Probe,+49 30 1234567,\n{w.Annas.Id},Anna Own AG,,B\n{w.Annas.Id},Anna Renamed AG,,\n", "anna");
        Assert.True(summary.Rejected == 0, string.Join("; ", summary.FirstRejects));
        Assert.Equal(1, summary.Created);
        Assert.Equal(1, summary.Updated);
        var all = await w.Engine.AllCustomersAsync();
        var fresh = Assert.Single(all, c => c.Name == "Fresh Probe");
        Assert.Equal("anna", fresh.Owner);
        Assert.DoesNotContain("possible-duplicate", fresh.Tags);
        Assert.False(fresh.Custom.ContainsKey("possibleDuplicateOf"));
        Assert.Equal("Anna Renamed AG", all.Single(c => c.Id == w.Annas.Id).Name);

        // The same file again: her own card is unchanged (she may change it), nothing is created twice.
        summary = await ImportAsync(w, $"id,name\n{w.Annas.Id},Anna Renamed AG\n", "anna");
        Assert.Equal(1, summary.Unchanged);

        // The administrator is told of Bob's customer: marked as its possible duplicate.
        summary = await ImportAsync(w, "name,phones\nAdmin Probe,+49 30 1234567\n", "root");
        Assert.Equal(1, summary.Created);
        var probe = Assert.Single(await w.Engine.AllCustomersAsync(), c => c.Name == "Admin Probe");
        Assert.Contains(w.Bobs.Id, probe.Custom["possibleDuplicateOf"].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_operator_importing_a_merged_away_id_updates_the_kept_customer_instead_of_taking_the_id()
    {
        var w = await StartAsync();
        await using var _ = w.Engine;
        var count = (await w.Engine.AllCustomersAsync()).Count;

        var summary = await ImportAsync(w, $"id,tags\n{w.Gone},from-old-id\n", null);
        Assert.True(summary.Rejected == 0, string.Join("; ", summary.FirstRejects));
        Assert.Equal(1, summary.Updated);
        Assert.Null(await w.Engine.Store().Customers.GetAsync(w.Gone));
        var all = await w.Engine.AllCustomersAsync();
        Assert.Equal(count, all.Count);
        Assert.Contains("from-old-id", all.Single(c => c.Name == "Kept KG").Tags);
    }
}
