using System.Text.Json.Nodes;
using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;

namespace CrmEngine.Security.Tests;

/// <summary>
/// Paging for a manager who sees more than <see cref="VisibleRecords.MaxOwnerScans"/> owners (the merge of owner index
/// ranges in growing slices, and the budgeted read in id order tried first), look-ups filtered before the page is cut,
/// and which writers write enforcement looks at.
/// </summary>
public sealed class VisibleMergeTests
{
    [Fact]
    public async Task A_manager_of_many_owners_pages_through_exactly_the_visible_records_in_id_order()
    {
        await using var engine = new TestEngine();
        await engine.SeedShippedAsync();
        // 100 reps in unit north under the manager; 5 reps elsewhere whose customers the manager must never see.
        var users = new JsonArray
        {
            new JsonObject { ["id"] = "boss", ["name"] = "Boss", ["unit"] = "north", ["roles"] = new JsonArray("sales-manager") },
        };
        for (var i = 0; i < 100; i++)
        {
            users.Add(new JsonObject { ["id"] = $"rep{i:D3}", ["name"] = "Rep", ["unit"] = "north" });
        }

        for (var i = 0; i < 5; i++)
        {
            users.Add(new JsonObject { ["id"] = $"far{i}", ["name"] = "Far", ["unit"] = "marketing" });
        }

        var seed = new JsonObject
        {
            ["units"] = JsonNode.Parse("""[ { "id": "north", "name": "North", "parent": "sales" } ]"""),
            ["users"] = users,
        };
        await engine.Security.SeedAsync(SeedFile.Parse(seed.ToJsonString(), "many.json"), "admin");

        var store = engine.Store();
        var visible = new List<string>();
        var random = new Random(7);
        for (var i = 0; i < 400; i++)
        {
            // Uneven: a few reps own most customers, many own one or none, a fifth belong to far-away reps.
            var owner = random.Next(5) == 0 ? $"far{random.Next(5)}" : $"rep{(random.Next(3) == 0 ? random.Next(100) : random.Next(4)):D3}";
            var created = await store.Customers.CreateAsync(new Customer { Name = $"C{i:D3}", Owner = owner, Tags = [i % 2 == 0 ? "even" : "odd"] });
            if (owner.StartsWith("rep", StringComparison.Ordinal))
            {
                visible.Add(created.Id);
            }
        }

        var filter = (await engine.Security.ContextForAsync("boss")).Filter("customer");
        Assert.False(filter.All);
        Assert.True(filter.Owners.Count > VisibleRecords.MaxOwnerScans, $"{filter.Owners.Count} owners");
        var expected = visible.Order(StringComparer.Ordinal).ToList();

        // Both ways to a page: the merge of owner ranges (no scan budget) and a read in id order within the budget.
        foreach (var (limit, perOwner) in new[] { (1, 0), (7, 0), (50, 0), (500, 0), (7, VisibleRecords.ScanRecordsPerOwner), (50, VisibleRecords.ScanRecordsPerOwner), (3, 1) })
        {
            var seen = new List<string>();
            string? after = null;
            while (true)
            {
                var page = await VisibleRecords.PageAsync(store.Customers, filter, c => c.Owner, limit, after, perOwner, CancellationToken.None);
                seen.AddRange(page.Select(c => c.Id));
                if (page.Count < limit)
                {
                    break;
                }

                after = page[^1].Id;
            }

            Assert.True(expected.SequenceEqual(seen), $"limit {limit}, scan budget {perOwner} per owner: {seen.Count} of {expected.Count}");
        }

        Assert.Equal(expected.Count, await VisibleRecords.CountAsync(store.Customers, filter, c => c.Owner));

        // A look-up (tag) keeps visible records before the page is cut: pages of 3 give exactly the visible even ones.
        var evens = new List<string>();
        string? cursor = null;
        while (true)
        {
            var page = await VisibleRecords.FindAsync(store.Customers, filter, c => c.Owner, IndexedField.Tag, "even", 3, cursor);
            evens.AddRange(page.Select(c => c.Id));
            if (page.Count < 3)
            {
                break;
            }

            cursor = page[^1].Id;
        }

        var allEvens = await store.Customers.FindAsync(IndexedField.Tag, "even", 1000);
        Assert.Equal(allEvens.Where(c => c.Owner!.StartsWith("rep", StringComparison.Ordinal)).Select(c => c.Id), evens);
        Assert.NotEqual(allEvens.Count, evens.Count);

        // An owner the manager does not see: nothing, unless a record of theirs is shared with the manager.
        Assert.Empty(await VisibleRecords.FindAsync(store.Customers, filter, c => c.Owner, IndexedField.Owner, "far0", 50));
        var far = (await store.Customers.FindAsync(IndexedField.Owner, "far0", 2)).ToList();
        Assert.NotEmpty(far);
        await engine.Security.ShareAsync("customer", far[0].Id, "user:boss", [Privilege.Read], "admin");
        var sharing = (await engine.Security.ContextForAsync("boss")).Filter("customer");
        Assert.Equal([far[0].Id], (await VisibleRecords.FindAsync(store.Customers, sharing, c => c.Owner, IndexedField.Owner, "far0", 50)).Select(c => c.Id));
        Assert.Contains(far[0].Id, (await VisibleRecords.PageAsync(store.Customers, sharing, c => c.Owner, 1000)).Select(c => c.Id));
    }

    [Theory]
    [InlineData("anna", true)]
    [InlineData("apikey:erp", true)]
    [InlineData("admin", true)]
    [InlineData("plugin:sales", false)]
    [InlineData("rule:welcome", false)]
    [InlineData("system:rules", false)]
    [InlineData("import:anna", false)]
    [InlineData("merge:anna", false)]
    [InlineData("mail", false)]
    [InlineData("scheduler", false)]
    public void Write_enforcement_looks_only_at_users_and_api_keys(string actor, bool checkedWrite) =>
        Assert.Equal(checkedWrite, WriteEnforcement.Checks(actor));
}
