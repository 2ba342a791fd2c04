using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Core.Tests;

/// <summary>
/// Ordered index reads (<see cref="IndexReads"/>): the activities' due order, key ranges both ways, prefix ranges read in
/// bounded chunks, and the schema upgrade that writes the due key into activities stored by a version-1 engine.
/// </summary>
public class IndexReadTests
{
    private static readonly DateTimeOffset Base = new(2030, 1, 1, 8, 0, 0, TimeSpan.Zero);

    /// <summary>Activities of one customer: dated by due time, by start time only (due wins over start), undated, and ties.</summary>
    private static async Task<List<Activity>> MixedTimelineAsync(TestEngine engine, string customerId, int count, int seed)
    {
        var random = new Random(seed);
        var activities = new List<Activity>();
        for (var i = 0; i < count; i++)
        {
            var at = Base.AddHours(random.Next(0, 40));
            var activity = new Activity { CustomerId = customerId, Subject = $"a{i}" };
            switch (random.Next(4))
            {
                case 0: activity.DueAt = at; break;
                case 1: activity.StartAt = at; break;
                case 2: activity.DueAt = at.ToOffset(TimeSpan.FromHours(2)); activity.StartAt = at.AddDays(-3); break;
                default: break; // undated
            }

            activities.Add(activity);
        }

        return [.. await engine.Store.Activities.CreateManyAsync(activities)];
    }

    /// <summary>What the timeline did before it had an index: every activity read and sorted by due time, else start time, undated last, then id.</summary>
    private static List<string> SortedInMemory(IEnumerable<Activity> activities) =>
        activities.OrderBy(a => (a.DueAt ?? a.StartAt) is null ? 1 : 0)
            .ThenBy(a => (a.DueAt ?? a.StartAt)?.UtcTicks ?? 0)
            .ThenBy(a => a.Id, StringComparer.Ordinal)
            .Select(a => a.Id)
            .ToList();

    [Fact]
    public async Task Due_order_is_due_else_start_time_undated_last_ties_by_id_and_follows_changes()
    {
        using var engine = new TestEngine();
        var customer = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Due"));
        var other = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Other"));
        var activities = await MixedTimelineAsync(engine, customer.Id, 90, seed: 3);
        await MixedTimelineAsync(engine, other.Id, 20, seed: 4);
        Assert.Contains(activities, a => a.DueAt is null && a.StartAt is null);
        Assert.True(activities.GroupBy(a => (a.DueAt ?? a.StartAt)?.UtcTicks).Any(g => g.Key is not null && g.Count() > 1), "the data holds ties");

        List<string> Read(string? after = null) =>
            IndexReads.ActivitiesByDue(engine.Database, customer.Id, after, chunk: 7)!.Select(h => h.Id).ToList();

        var expected = SortedInMemory(activities);
        Assert.Equal(expected, Read());

        // The cursor of any activity resumes right after it.
        var hits = IndexReads.ActivitiesByDue(engine.Database, customer.Id, null)!.ToList();
        Assert.Equal(expected.Skip(41), Read(IndexReads.ActivityDueCursor(hits[40])));
        Assert.Equal(IndexReads.ActivityDueCursor(activities.Single(a => a.Id == hits[40].Id)), IndexReads.ActivityDueCursor(hits[40]));
        Assert.Null(IndexReads.ActivitiesByDue(engine.Database, customer.Id, "not-a-cursor"));

        // A changed due time moves the activity; a deleted one is gone.
        var moved = activities.First(a => a.DueAt is null && a.StartAt is null);
        moved.DueAt = Base.AddYears(-1);
        await engine.Store.Activities.UpdateAsync(moved);
        await engine.Store.Activities.DeleteAsync(activities[5].Id);
        var current = activities.Where(a => a.Id != activities[5].Id).Select(a => a.Id == moved.Id ? moved : a);
        var now = Read();
        Assert.Equal(SortedInMemory(current), now);
        Assert.Equal(moved.Id, now[0]);

        // The sort key is stored and indexed but is no look-up callers can search.
        Assert.DoesNotContain(IndexReads.ActivityDueField, engine.Store.Activities.IndexedFields);
        await Assert.ThrowsAsync<ArgumentException>(() => engine.Store.Activities.FindAsync(IndexReads.ActivityDueField, customer.Id));
    }

    [Fact]
    public async Task A_key_range_reads_newest_first_from_a_cursor()
    {
        using var engine = new TestEngine();
        var customer = await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Newest"));
        var ids = (await MixedTimelineAsync(engine, customer.Id, 30, seed: 5)).Select(a => a.Id).ToList();
        var newestFirst = Enumerable.Reverse(ids).ToList();

        var all = IndexReads.ByKey(engine.Database, CoreEntities.Activity, IndexedField.CustomerId, customer.Id, null, descending: true, chunk: 4)
            .Select(h => h.Id).ToList();
        Assert.Equal(newestFirst, all);
        Assert.Equal(newestFirst.Skip(11),
            IndexReads.ByKey(engine.Database, CoreEntities.Activity, IndexedField.CustomerId, customer.Id, newestFirst[10], descending: true, chunk: 4).Select(h => h.Id));
        Assert.Equal(ids.Skip(11),
            IndexReads.ByKey(engine.Database, CoreEntities.Activity, IndexedField.CustomerId, customer.Id, ids[10], descending: false, chunk: 4).Select(h => h.Id));
    }

    [Fact]
    public async Task A_filtered_prefix_read_stops_once_the_caller_has_enough_and_resumes_from_its_cursor()
    {
        using var engine = new TestEngine();
        // 400 customers whose names start with "zeta"; anna owns five of them, spread over the range.
        var annas = new HashSet<int> { 10, 25, 40, 300, 390 };
        var created = await engine.Store.Customers.CreateManyAsync(Enumerable.Range(0, 400)
            .Select(i => new Customer { Name = $"Zeta {i:D4}", Owner = annas.Contains(i) ? "anna" : "ben" }));
        await engine.Store.Customers.CreateAsync(new Customer { Name = "Zet", Owner = "anna" });
        var annaIds = created.Where(c => c.Owner == "anna").Select(c => c.Id).ToList();

        var stats = new IndexReadStats();
        var first = IndexReads.ByPrefix(engine.Database, CoreEntities.Customer, IndexedField.Name, "ZETA ", null, h => h.Owner == "anna", chunk: 16, stats)!
            .Take(3).ToList();
        Assert.Equal(annaIds.Take(3), first.Select(h => h.Id));
        // The third of anna's names is the 41st in name order: three chunks of 16, not the 400 names.
        Assert.Equal(3, stats.Chunks);
        Assert.Equal(48, stats.Documents);

        var rest = IndexReads.ByPrefix(engine.Database, CoreEntities.Customer, IndexedField.Name, "zeta", first[^1].Entry, h => h.Owner == "anna", chunk: 16)!
            .Select(h => h.Id).ToList();
        Assert.Equal(annaIds.Skip(3), rest);
        Assert.Null(IndexReads.ByPrefix(engine.Database, CoreEntities.Customer, IndexedField.Name, "other", first[^1].Entry));
    }

    [Fact]
    public async Task A_record_with_several_entries_in_a_range_is_read_once_across_chunks()
    {
        using var engine = new TestEngine();
        var both = await engine.Store.Customers.CreateAsync(new Customer { Name = "Both", Emails = ["m1@example.com", "m9@example.com"] });
        var middle = await engine.Store.Customers.CreateManyAsync(Enumerable.Range(2, 6).Select(i => new Customer { Name = $"M{i}", Emails = [$"m{i}@example.com"] }));

        foreach (var chunk in new[] { 1, 2, 3, 100 })
        {
            var hits = IndexReads.ByPrefix(engine.Database, CoreEntities.Customer, IndexedField.Email, "m", null, chunk: chunk)!.ToList();
            Assert.Equal(new[] { both.Id }.Concat(middle.Select(c => c.Id)), hits.Select(h => h.Id));
            // From a cursor after its first e-mail, the record is not met again at its second.
            Assert.Equal(middle.Skip(1).Select(c => c.Id),
                IndexReads.ByPrefix(engine.Database, CoreEntities.Customer, IndexedField.Email, "m", hits[1].Entry, chunk: chunk)!.Select(h => h.Id));
        }
    }

    /// <summary>Makes the file what a version-1 engine left: activities without the due key, schema marker 1 (and an upgrade's progress, if given).</summary>
    private static void DowngradeToVersion1(string folder, string? rebuiltTo = null)
    {
        using var raw = new LiteDatabase($"Filename={Path.Combine(folder, "crm.db")};Connection=direct;Collation=en-US/Ordinal");
        var activities = raw.GetCollection("activities");
        var docs = activities.FindAll().ToList();
        foreach (var doc in docs)
        {
            doc["_ix"].AsDocument.Remove(IndexReads.ActivityDueField);
        }

        Assert.Equal(docs.Count, activities.Update(docs));
        var meta = raw.GetCollection("_meta");
        var marker = meta.FindById("schema");
        marker["version"] = 1;
        if (rebuiltTo is not null)
        {
            marker["rebuiltTo"] = rebuiltTo;
        }

        meta.Update(marker);
        Assert.Equal(0, activities.Count(BsonExpression.Create($"COUNT($._ix.{IndexReads.ActivityDueField}[*]) > 0")));
    }

    [Fact]
    public async Task Activities_stored_by_a_version_1_engine_get_their_due_key_at_the_first_open_and_a_cut_short_upgrade_goes_on()
    {
        var folder = Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        try
        {
            string customerId;
            List<Activity> activities;
            using (var engine = new TestEngine(folder: folder))
            {
                customerId = (await engine.Store.Customers.CreateAsync(TestEngine.NewCustomer("Old"))).Id;
                activities = await MixedTimelineAsync(engine, customerId, 2500, seed: 7);
            }

            DowngradeToVersion1(folder);
            using (var engine = new TestEngine(folder: folder))
            {
                Assert.Equal(SortedInMemory(activities), IndexReads.ActivitiesByDue(engine.Database, customerId, null)!.Select(h => h.Id));
                var marker = engine.Database.Database.GetCollection("_meta").FindById("schema");
                Assert.Equal(CrmDatabase.SchemaVersion, marker["version"].AsInt32);
                Assert.False(marker.ContainsKey("rebuiltTo"));
            }

            // An upgrade stopped after the activity with the 1,000th id: the next open writes only the ones after it.
            var byId = activities.OrderBy(a => a.Id, StringComparer.Ordinal).ToList();
            DowngradeToVersion1(folder, rebuiltTo: byId[999].Id);
            using (var engine = new TestEngine(folder: folder))
            {
                Assert.Equal(SortedInMemory(byId.Skip(1000)), IndexReads.ActivitiesByDue(engine.Database, customerId, null)!.Select(h => h.Id));
            }
        }
        finally
        {
            TestEngine.TryDelete(folder);
        }
    }
}
