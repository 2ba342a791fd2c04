using System.Diagnostics;
using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using CrmEngine.Rules;
using CrmEngine.Rules.Scripting;
using CrmEngine.Rules.Segments;
using LiteDB;

// dotnet run -c Release --project bench/CrmEngine.Rules.Bench -- [customers=1000000] [latencySamples=200]
var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
var samples = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;
const string Segment = "big-spenders";
const string Script = "return customer.totalSpent > 1000 && customer.orderCount >= 2;";
static bool Predicate(decimal total, int count) => total > 1000 && count >= 2;

var folder = Path.Combine(Path.GetTempPath(), "crm-rules-bench", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(Path.Combine(folder, "rules", "segments"));
File.WriteAllText(Path.Combine(folder, "rules", "segments", Segment + ".js"), Script);
var storeOptions = new StoreOptions { DataDirectory = folder, FileName = "crm.db" };
// The default change poll interval (what a user gets), no time refresh during the run.
var rulesOptions = new RulesOptions { Directory = Path.Combine(folder, "rules"), TimeRefresh = TimeSpan.Zero };
var dbFile = Path.Combine(folder, "crm.db");
Console.WriteLine($"segment rebuild benchmark: {n:N0} customers, every 3rd with 1-3 orders; {Environment.ProcessorCount} cores; script: {Script}");
Console.WriteLine($"load at start: {Load()}");

try
{
    // ---------------------------------------------------------------- seed
    // A template of customers and orders is written through the engine (real documents, look-up entries), then
    // cloned with fresh ids by bare LiteDB bulk inserts up to n customers: a million through the full pipeline
    // (audit, change feed) would take most of the run. The clones are never in the change feed, which the
    // rebuild does not read.
    var sw = Stopwatch.StartNew();
    var cpu = Cpu();
    var template = Math.Min(n, 3000);
    using (var db = new CrmDatabase(storeOptions))
    {
        var store = new StoreProvider(new WritePipeline(db, new WriteHandlerRegistry(), new PipelineOptions(), () => [])).ForActor("bench");
        var random = new Random(42);
        var customers = Enumerable.Range(0, template).Select(i => new Customer { Name = "C" + i, Tags = i % 7 == 0 ? ["vip"] : [] }).ToList();
        var created = await store.Customers.CreateManyAsync(customers);
        var orders = new List<Order>();
        for (var i = 0; i < created.Count; i += 3)
        {
            for (var k = random.Next(1, 4); k > 0; k--)
            {
                orders.Add(new Order
                {
                    CustomerId = created[i].Id,
                    Status = OrderStatus.Paid,
                    OrderedAt = DateTimeOffset.UtcNow.AddDays(-random.Next(0, 400)),
                    Lines = [new OrderLine { Description = "item", Quantity = 1, UnitPrice = random.Next(10, 1500) }],
                });
            }
        }

        await store.Orders.CreateManyAsync(orders);
    }

    var engineSeed = sw.Elapsed.TotalSeconds;
    sw.Restart();
    cpu = Cpu();
    using (var lite = new LiteDatabase($"Filename={dbFile};Connection=direct"))
    {
        var customerDocs = lite.GetCollection("customers").FindAll().ToList();
        var ordersOf = lite.GetCollection("orders").FindAll().GroupBy(d => d["CustomerId"].AsString).ToDictionary(g => g.Key, g => g.ToList());
        var pick = new Random(7);
        long serial = 0;
        string NewId() => string.Create(CultureInfo.InvariantCulture, $"{0x0180_0000_0000L + serial++:x12}7000{serial:x16}");
        var clones = new List<(BsonDocument Customer, List<BsonDocument> Orders)>();
        void Flush()
        {
            lite.GetCollection("customers").InsertBulk(clones.Select(c => c.Customer), 10_000);
            lite.GetCollection("orders").InsertBulk(clones.SelectMany(c => c.Orders), 10_000);
            clones.Clear();
        }

        for (var i = template; i < n; i++)
        {
            var source = customerDocs[pick.Next(customerDocs.Count)];
            var oldId = source["_id"].AsString;
            var newId = NewId();
            var customer = (BsonDocument)Rewrite(source, [(oldId, newId)]);
            var orders = ordersOf.TryGetValue(oldId, out var list)
                ? list.Select(o => (BsonDocument)Rewrite(o, [(oldId, newId), (o["_id"].AsString, NewId())])).ToList()
                : [];
            clones.Add((customer, orders));
            if (clones.Count == 20_000)
            {
                Flush();
            }
        }

        Flush();
        lite.Checkpoint();
    }

    Console.WriteLine($"seed: {template:N0} customers + orders through the engine {engineSeed:0.0} s, the rest cloned by bare InsertBulk {sw.Elapsed.TotalSeconds:0.0} s ({Cpu() - cpu:0.0} s CPU)");

    // ---------------------------------------------------------------- bare LiteDB
    double bareScan, barePredicate;
    int bareMembers;
    using (var lite = new LiteDatabase($"Filename={dbFile};Connection=direct"))
    {
        sw.Restart();
        cpu = Cpu();
        long count = 0;
        foreach (var doc in lite.GetCollection("customers").FindAll())
        {
            count += doc["_id"].AsString.Length > 0 ? 1 : 0;
        }

        bareScan = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"bare LiteDB scan of customers ({count:N0} documents):                {bareScan,8:0.00} s  ({Cpu() - cpu:0.00} s CPU)");

        // The same test as the script, in C#, on bare documents: sum orders per customer (one scan), then the predicate.
        sw.Restart();
        cpu = Cpu();
        var totals = new Dictionary<string, (decimal Total, int Count)>(StringComparer.Ordinal);
        foreach (var doc in lite.GetCollection("orders").FindAll())
        {
            var id = doc["CustomerId"].AsString;
            var amount = 0m;
            foreach (var l in doc["Lines"].AsArray)
            {
                amount += l["Quantity"].AsDecimal * l["UnitPrice"].AsDecimal;
            }

            totals.TryGetValue(id, out var t);
            totals[id] = (t.Total + amount, t.Count + 1);
        }

        bareMembers = 0;
        foreach (var doc in lite.GetCollection("customers").FindAll())
        {
            totals.TryGetValue(doc["_id"].AsString, out var t);
            bareMembers += Predicate(t.Total, t.Count) ? 1 : 0;
        }

        barePredicate = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"plain C# predicate over bare LiteDB scans (orders + customers):  {barePredicate,8:0.00} s  ({Cpu() - cpu:0.00} s CPU, {bareMembers:N0} members)");
    }

    // ---------------------------------------------------------------- the engine
    using (var db = new CrmDatabase(storeOptions))
    {
        var provider = new StoreProvider(new WritePipeline(db, new WriteHandlerRegistry(), new PipelineOptions(), () => []));
        var store = provider.ForActor("bench");
        using var engine = new JsRuleEngine(rulesOptions);
        using var catalog = new RuleCatalog(engine, rulesOptions.Directory);
        catalog.Reload();
        using var segments = new SegmentService(engine, catalog, provider, Microsoft.Extensions.Options.Options.Create(rulesOptions));

        // The rebuild's data path (order scan summed per customer, customer pages, the customer objects) with the C# predicate instead of the script.
        var needed = CustomerFacts.ReferencedFields(Script, "customer");
        var now = DateTimeOffset.UtcNow;
        sw.Restart();
        cpu = Cpu();
        var figures = new Dictionary<string, OrderFigures>(StringComparer.Ordinal);
        for (string? o = null; ;)
        {
            var orderPage = await store.Orders.ListAsync(5000, o);
            foreach (var order in orderPage)
            {
                if (!figures.TryGetValue(order.CustomerId, out var f))
                {
                    figures[order.CustomerId] = f = new OrderFigures(now, false);
                }

                f.Add(order);
            }

            if (orderPage.Count < 5000)
            {
                break;
            }

            o = orderPage[^1].Id;
        }

        var csharpMembers = 0;
        var allFacts = new List<IReadOnlyList<object?>>();
        for (string? after = null; ;)
        {
            var page = await store.Customers.ListAsync(1000, after);
            if (page.Count == 0)
            {
                break;
            }

            after = page[^1].Id;
            foreach (var c in page)
            {
                var facts = CustomerFacts.Build(c, figures.GetValueOrDefault(c.Id), null, now, needed);
                csharpMembers += (double)facts["totalSpent"]! > 1000 && (int)facts["orderCount"]! >= 2 ? 1 : 0;
                if (allFacts.Count < 200_000)
                {
                    allFacts.Add([facts]);
                }
            }
        }

        var csharpPass = sw.Elapsed.TotalSeconds;
        figures = null;
        Console.WriteLine($"engine read path + customer objects + C# predicate:              {csharpPass,8:0.00} s  ({Cpu() - cpu:0.00} s CPU, {csharpMembers:N0} members)");

        // The script alone over customer objects already in memory: the cost of JavaScript itself.
        var script = catalog.Find(RuleKind.Segment, Segment)!.Script;
        sw.Restart();
        cpu = Cpu();
        var results = await engine.RunManyAsync(script, allFacts);
        var jsOnly = sw.Elapsed.TotalSeconds;
        var jsCpu = Cpu() - cpu;
        sw.Restart();
        var cs = allFacts.Count(f => { var d = (Dictionary<string, object?>)f[0]!; return (double)d["totalSpent"]! > 1000 && (int)d["orderCount"]! >= 2; });
        var csOnly = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"script only, {allFacts.Count:N0} in-memory customers on {engine.WorkerCount} workers: Jint {jsOnly * 1e6 / allFacts.Count,6:0.0} µs/customer ({jsCpu * 1e6 / allFacts.Count:0.0} µs CPU) vs C# {csOnly * 1e6 / allFacts.Count,6:0.00} µs/customer ({results.Count(r => r.Value is true):N0} vs {cs:N0} members)");
        allFacts = null;
        results = null;
        GC.Collect();

        sw.Restart();
        cpu = Cpu();
        var report = await segments.RebuildAsync(Segment);
        var rebuild = sw.Elapsed.TotalSeconds;
        var rebuildCpu = Cpu() - cpu;
        Console.WriteLine($"engine full rebuild, first (facts + Jint + {report.Added:N0} members stored): {rebuild,8:0.00} s  ({rebuildCpu:0.00} s CPU) = {rebuild / bareScan:0.0}x the bare scan, {rebuild / barePredicate:0.0}x the bare C# predicate, {rebuild / csharpPass:0.00}x the engine C# pass");
        if (report.Members != bareMembers || report.Members != csharpMembers || report.Failed != 0)
        {
            Console.WriteLine($"MISMATCH: engine {report.Members} ({report.Failed} failed), bare {bareMembers}, C# {csharpMembers}");
        }

        sw.Restart();
        cpu = Cpu();
        var again = await segments.RebuildAsync(Segment);
        var rebuildAgain = sw.Elapsed.TotalSeconds;
        var againCpu = Cpu() - cpu;
        Console.WriteLine($"engine full rebuild again (no membership changes, +{again.Added} -{again.Removed}):     {rebuildAgain,8:0.00} s  ({againCpu:0.00} s CPU) = {rebuildAgain / bareScan:0.0}x the bare scan, {rebuildAgain / barePredicate:0.0}x the bare C# predicate");
        Console.WriteLine($"peak working set {Environment.WorkingSet / 1e6:0} MB now, {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:0} MB peak; load: {Load()}");

        // ---------------------------------------------------------------- change -> membership latency
        await segments.StartAsync(CancellationToken.None); // first start: the segment is current, so no rebuild; the feed starts
        var latencies = new List<double>();
        var timedOut = 0;
        for (string? after = null; latencies.Count + timedOut < samples;)
        {
            var page = await store.Customers.ListAsync(500, after);
            if (page.Count == 0)
            {
                break;
            }

            after = page[^1].Id;
            foreach (var c in page)
            {
                if (latencies.Count + timedOut >= samples || await segments.IsMemberAsync(Segment, c.Id))
                {
                    continue;
                }

                var t = Stopwatch.StartNew();
                await store.Orders.CreateManyAsync([
                    new Order { CustomerId = c.Id, Status = OrderStatus.Paid, OrderedAt = DateTimeOffset.UtcNow, Lines = [new OrderLine { Description = "x", Quantity = 1, UnitPrice = 800 }] },
                    new Order { CustomerId = c.Id, Status = OrderStatus.Paid, OrderedAt = DateTimeOffset.UtcNow, Lines = [new OrderLine { Description = "y", Quantity = 1, UnitPrice = 800 }] },
                ]);
                while (!await segments.IsMemberAsync(Segment, c.Id) && t.Elapsed < TimeSpan.FromSeconds(60))
                {
                    await Task.Delay(2);
                }

                if (await segments.IsMemberAsync(Segment, c.Id))
                {
                    latencies.Add(t.Elapsed.TotalMilliseconds);
                }
                else
                {
                    timedOut++;
                }
            }
        }

        await segments.StopAsync(CancellationToken.None);
        latencies.Sort();
        if (latencies.Count > 0)
        {
            double P(double q) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
            Console.WriteLine($"change -> membership (2 orders written until the member is stored), {latencies.Count} changes: p50 {P(0.5):0} ms, p99 {P(0.99):0} ms, max {latencies[^1]:0} ms{(timedOut > 0 ? $", {timedOut} not within 60 s" : "")} (poll interval {rulesOptions.ChangePollInterval.TotalMilliseconds:0} ms)");
        }
    }

    Console.WriteLine($"load at end: {Load()}");
}
finally
{
    try
    {
        Directory.Delete(folder, true);
    }
    catch (IOException)
    {
    }
}

static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

static string Load() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";

// A deep copy of a document with every string holding an old id rewritten (the _id, the look-up entries "key\u0001id", CustomerId).
static BsonValue Rewrite(BsonValue value, (string Old, string New)[] ids)
{
    switch (value.Type)
    {
        case BsonType.Document:
        {
            var copy = new BsonDocument();
            foreach (var (k, v) in value.AsDocument)
            {
                copy[k] = Rewrite(v, ids);
            }

            return copy;
        }

        case BsonType.Array:
            return new BsonArray(value.AsArray.Select(v => Rewrite(v, ids)));
        case BsonType.String:
        {
            var s = value.AsString;
            foreach (var (o, nw) in ids)
            {
                if (s.Contains(o, StringComparison.Ordinal))
                {
                    s = s.Replace(o, nw, StringComparison.Ordinal);
                }
            }

            return new BsonValue(s);
        }

        default:
            return value;
    }
}
