using System.Globalization;
using System.Text.Json;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Api.Keys;
using CrmEngine.Api.Resources;
using CrmEngine.Api.Tests.Support;
using CrmEngine.Core.Storage;
using CrmEngine.Security;
using Microsoft.AspNetCore.Http;

namespace CrmEngine.Api.Tests.Resources;

/// <summary>
/// The timeline in due order and the name search read ordered index ranges page by page (no whole-list reads). Over real
/// HTTP against one engine with the shipped roles: the administrator, and anna, a salesperson who sees only her own records.
/// </summary>
public sealed class IndexedReadTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Base = new(2031, 5, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly string _rules = Path.Combine(Path.GetTempPath(), "crm-api-indexed-rules", Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, string> _keys = new(StringComparer.Ordinal);
    private ApiTestHost _host = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_rules, "segments"));
        _host = await ResourceApiFixture.StartAsync(_rules, new ResourceApiFixture.FakeRedirects());
        var admin = _host.GetService<SecurityAdministration>();
        await admin.SeedAsync(SeedFile.Load(BearerTokenTests.ShippedSeed()), "admin");
        foreach (var user in new[] { "anna", "bob" })
        {
            await admin.CreateUserAsync(new SecurityUser { Id = user, Name = user, BusinessUnit = "sales", Roles = ["salesperson"] }, "admin");
        }

        var keys = _host.GetService<ApiKeyAdministration>();
        foreach (var user in new[] { "anna", "admin" })
        {
            _keys[user] = (await keys.CreateAsync("key-" + user, ApiScope.Read, null, user)).Key;
        }
    }

    public Task DisposeAsync() => ResourceApiFixture.StopAsync(_host, _rules);

    /// <summary>Stores the records in one bulk write (the engine's import path) and returns them as stored.</summary>
    private static async Task<List<T>> CreateManyAsync<T>(IEntitySet<T> set, IEnumerable<T> records) where T : class, IEntity, new()
    {
        var results = await set.WriteManyAsync(records.Select(r => new BulkWrite<T>(BulkOperation.Create, r)).ToList());
        Assert.All(results, r => Assert.True(r.Succeeded, r.Error?.Message));
        return results.Select(r => r.Stored!).ToList();
    }

    /// <summary>Follows <c>next</c> from <paramref name="url"/> to the end; <paramref name="between"/> runs after each page that has a next one.</summary>
    private static async Task<List<List<JsonElement>>> WalkAsync(HttpClient client, string url, Func<List<JsonElement>, Task>? between = null)
    {
        var pages = new List<List<JsonElement>>();
        string? next = url;
        while (next is not null)
        {
            using var response = await client.GetAsync(next);
            var page = await Api.OkJsonAsync(response);
            pages.Add(page.GetProperty("items").EnumerateArray().ToList());
            next = page.GetProperty("next").GetString();
            if (next is not null && between is not null)
            {
                await between(pages[^1]);
            }
        }

        return pages;
    }

    private HttpClient Client(string user) => ResourceApiFixture.NoRedirectClient(_host, _keys[user]);

    /// <summary>The timeline's due order as it was computed before the index: due time, else start time (UTC), undated last, then id.</summary>
    private static string DueCursor(DateTimeOffset? dueAt, DateTimeOffset? startAt, string id) => (dueAt ?? startAt) is { } at
        ? "0." + at.UtcTicks.ToString("D19", CultureInfo.InvariantCulture) + "." + id
        : "1." + id;

    private static string DueCursor(Activity a) => DueCursor(a.DueAt, a.StartAt, a.Id);

    private static string DueCursor(JsonElement a)
    {
        DateTimeOffset? Read(string name) => a.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? DateTimeOffset.Parse(v.GetString()!, CultureInfo.InvariantCulture)
            : null;
        return DueCursor(Read("dueAt"), Read("startAt"), a.Id());
    }

    /// <summary>The old timeline: every activity of the customer the caller may read, sorted in memory.</summary>
    private async Task<List<string>> ReferenceAsync(string customerId, string? owner)
    {
        var all = new List<Activity>();
        string? after = null;
        while (true)
        {
            var slice = await _host.Store().Activities.FindAsync("customerId", customerId, 500, after);
            all.AddRange(slice);
            if (slice.Count < 500)
            {
                break;
            }

            after = slice[^1].Id;
        }

        return all.Where(a => owner is null || a.Owner == owner).Select(DueCursor).Order(StringComparer.Ordinal).Select(c => c[(c.LastIndexOf('.') + 1)..]).ToList();
    }

    private static Activity NewActivity(string customerId, string owner, Random random, int i)
    {
        var at = Base.AddHours(random.Next(0, 60)).ToOffset(TimeSpan.FromHours(random.Next(-5, 6)));
        var a = new Activity { CustomerId = customerId, Subject = $"activity {i}", Owner = owner };
        switch (random.Next(5))
        {
            case 0: a.DueAt = at; break;
            case 1: a.StartAt = at; break;
            case 2: a.DueAt = at; a.StartAt = at.AddDays(-10); break;
            default: break; // undated
        }

        return a;
    }

    /// <summary>A customer of anna's with <paramref name="count"/> activities (random times), owned as <paramref name="ownerOf"/> says.</summary>
    private async Task<(Customer Customer, List<Activity> Activities)> AnnasCustomerAsync(int count, int seed, Func<int, string> ownerOf)
    {
        var random = new Random(seed);
        var customer = await _host.Store().Customers.CreateAsync(new Customer { Name = Api.Unique("Timeline"), Owner = "anna" });
        return (customer, await CreateManyAsync(_host.Store().Activities, Enumerable.Range(0, count).Select(i => NewActivity(customer.Id, ownerOf(i), random, i))));
    }

    [Fact]
    public async Task Due_timeline_pages_equal_the_old_in_memory_order_and_stay_stable_while_activities_are_added()
    {
        // 240 activities, a quarter of them bob's (anna may not read them), ties in time, dated and undated.
        var (customer, seeded) = await AnnasCustomerAsync(240, seed: 11, i => i % 4 == 0 ? "bob" : "anna");
        Assert.Contains(seeded, a => a.DueAt is null && a.StartAt is null);

        foreach (var (user, owner) in new[] { ("admin", (string?)null), ("anna", "anna") })
        {
            using var client = Client(user);
            var before = await ReferenceAsync(customer.Id, owner);
            var addedAhead = new List<string>();
            var addedBehind = new List<string>();
            var pages = await WalkAsync(client, $"/api/customers/{customer.Id}/timeline?order=due&limit=7", async items =>
            {
                // Between pages others write: one activity due before the page's end (it must not show up later) and one after.
                var lastAt = items[^1].TryGetProperty("dueAt", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()
                    : items[^1].TryGetProperty("startAt", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
                if (lastAt is null)
                {
                    return;
                }

                var at = DateTimeOffset.Parse(lastAt, CultureInfo.InvariantCulture);
                var behind = await _host.Store().Activities.CreateAsync(new Activity
                    { CustomerId = customer.Id, Subject = "behind", Owner = owner ?? "bob", DueAt = at.AddMinutes(-1) });
                var ahead = await _host.Store().Activities.CreateAsync(new Activity
                    { CustomerId = customer.Id, Subject = "ahead", Owner = owner ?? "bob", DueAt = at.AddMinutes(1) });
                var last = DueCursor(items[^1]);
                Assert.True(string.CompareOrdinal(DueCursor(behind), last) < 0 && string.CompareOrdinal(DueCursor(ahead), last) > 0);
                addedBehind.Add(behind.Id);
                addedAhead.Add(ahead.Id);
            });
            Assert.All(pages, p => Assert.InRange(p.Count, 1, 7));
            var walked = pages.SelectMany(p => p).ToList();
            var ids = walked.Select(a => a.Id()).ToList();
            var cursors = walked.Select(DueCursor).ToList();
            // In due order, no activity twice, every activity that existed at the start exactly once and in the old order.
            Assert.Equal(cursors.Order(StringComparer.Ordinal), cursors);
            Assert.Equal(ids.Count, ids.Distinct().Count());
            Assert.Equal(before, ids.Where(before.Contains));
            Assert.True(addedAhead.Count > 10, $"{user}: activities were added during the walk ({addedAhead.Count})");
            Assert.All(addedAhead, id => Assert.Contains(id, ids));
            Assert.All(addedBehind, id => Assert.DoesNotContain(id, ids));
            if (owner is not null)
            {
                Assert.All(walked, a => Assert.Equal(owner, a.Str("owner")));
            }

            // After the writes, the whole timeline equals the old in-memory sort.
            var after = await ReferenceAsync(customer.Id, owner);
            var again = (await WalkAsync(client, $"/api/customers/{customer.Id}/timeline?order=due&limit=50")).SelectMany(p => p).Select(a => a.Id());
            Assert.Equal(after, again);
        }

        using var admin = Client("admin");
        using var bad = await admin.GetAsync($"/api/customers/{customer.Id}/timeline?order=due&after=garbage");
        Assert.Equal(["after"], Api.ErrorFields(await ApiTestHost.AssertProblemAsync(bad, 400)));
    }

    [Fact]
    public async Task Newest_first_timeline_of_a_restricted_caller_holds_only_her_activities_in_id_order()
    {
        var (customer, seeded) = await AnnasCustomerAsync(120, seed: 12, i => i % 10 == 0 ? "anna" : "bob");
        var expected = seeded.Where(a => a.Owner == "anna").Select(a => a.Id).Reverse().ToList();

        using var anna = Client("anna");
        var walked = (await WalkAsync(anna, $"/api/customers/{customer.Id}/timeline?limit=5")).SelectMany(p => p).Select(a => a.Id());
        Assert.Equal(expected, walked);
    }

    [Fact]
    public async Task A_salesperson_who_sees_few_of_many_matching_names_gets_exactly_hers_in_name_order_from_a_bounded_read()
    {
        var stem = Api.Unique("Quokka");
        var hers = new HashSet<int> { 5, 150, 151, 990 };
        var created = await CreateManyAsync(_host.Store().Customers, Enumerable.Range(0, 1000)
            .Select(i => new Customer { Name = $"{stem} {i:D4}", Owner = hers.Contains(i) ? "anna" : "bob" }));
        var annas = created.Where(c => c.Owner == "anna").Select(c => c.Id).ToList();
        var query = $"/api/customers?name={Uri.EscapeDataString(stem.ToUpperInvariant())}";

        async Task<List<List<string>>> PagesAsync(string user, int limit)
        {
            using var client = Client(user);
            return (await WalkAsync(client, query + "&limit=" + limit)).Select(p => p.Select(c => c.Id()).ToList()).ToList();
        }

        // anna: her four, in name order, two per page, nothing of bob's; the administrator: all 1,000 in name order.
        Assert.Equal([annas.Take(2).ToList(), annas.Skip(2).ToList()], await PagesAsync("anna", 2));
        Assert.Equal(created.Select(c => c.Id), (await PagesAsync("admin", 500)).SelectMany(p => p));

        // The same search in-process with its read counted: anna's first page (two and the look-ahead: names 5, 150, 151)
        // is found in the first two chunks of the index range, not by reading the 1,000 matching names.
        var context = new DefaultHttpContext { RequestServices = _host.Services };
        var visible = (await _host.GetService<SecurityAdministration>().ContextForAsync("anna")).Filter(EntityNames.Customer);
        var stats = new IndexReadStats();
        var found = NameSearch.Find<Customer>(context, stem, 3, null, visible.Matches, stats)!;
        Assert.Equal(annas.Take(3), found.Select(f => f.Record.Id));
        Assert.Equal(2, stats.Chunks);
        Assert.Equal(2 * NameSearch.FilteredChunk, stats.Documents);
    }
}
