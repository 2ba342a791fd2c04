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

// dotnet run -c Release --project bench/CrmEngine.Rules.Bench -- [customers=1000000] [latencySamples=20]
var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
var samples = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20;
const string Segment = "big-spenders";
const string Script = "return customer.totalSpent > 1000 && customer.orderCount >= 2;";
static bool Predicate(double total, int count) => total > 1000 && count >= 2;

var folder = Path.Combine(Path.GetTempPath(), "crm-rules-bench", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(Path.Combine(folder, "rules", "segments"));
File.WriteAllText(Path.Combine(folder, "rules", "segments", Segment + ".js"), Script);
var storeOptions = new StoreOptions { DataDirectory = folder, FileName = "crm.db" };
var rulesOptions = new RulesOptions { Directory = Path.Combine(folder, "rules"), ChangePollInterval = TimeSpan.FromMilliseconds(20), PeriodicRebuild = TimeSpan.Zero };
Console.WriteLine($"segment rebuild benchmark: {n:N0} customers, every 3rd with 1-3 orders; {Environment.ProcessorCount} cores; script: {Script}");

try
{
    // ---------------------------------------------------------------- seed through the engine
    var sw = Stopwatch.StartNew();
    using (var db = new CrmDatabase(storeOptions))
    {
        var store = new StoreProvider(new WritePipeline(db, new WriteHandlerRegistry(), new PipelineOptions(), () => [])).ForActor("bench");
        var random = new Random(42);
        const int Batch = 5000;
        for (var start = 0; start < n; start += Batch)
        {
            var customers = Enumerable.Range(start, Math.Min(Batch, n - start)).Select(i => new Customer { Name = "C" + i, Tags = i % 7 == 0 ? ["vip"] : [] }).ToList();
            var created = await store.Customers.CreateManyAsync(customers);
            var orders = new List<Order>();
            for (var i = 0; i < created.Count; i++)
            {
                if ((start + i) % 3 != 0)
                {
                    continue;
                }

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
    }

    Console.WriteLine($"seed (engine CreateManyAsync, customers + orders): {sw.Elapsed.TotalSeconds,8:0.0} s");

    // ---------------------------------------------------------------- bare LiteDB
    double bareScan, barePredicate;
    int bareMembers;
    using (var lite = new LiteDatabase($"Filename={Path.Combine(folder, "crm.db")};Connection=direct"))
    {
        sw.Restart();
        long count = 0;
        foreach (var doc in lite.GetCollection("customers").FindAll())
        {
            count += doc["_id"].AsString.Length > 0 ? 1 : 0;
        }

        bareScan = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"bare LiteDB scan of customers ({count:N0} documents):       {bareScan,8:0.00} s");

        // The same test as the script, in C#, on bare documents: sum orders per customer (one scan), then the predicate.
        sw.Restart();
        var totals = new Dictionary<string, (double Total, int Count)>(StringComparer.Ordinal);
        foreach (var doc in lite.GetCollection("orders").FindAll())
        {
            var id = doc["CustomerId"].AsString;
            var amount = doc["Lines"].AsArray.Sum(l => l["Quantity"].AsDecimal * l["UnitPrice"].AsDecimal);
            totals.TryGetValue(id, out var t);
            totals[id] = (t.Total + (double)amount, t.Count + 1);
        }

        bareMembers = 0;
        foreach (var doc in lite.GetCollection("customers").FindAll())
        {
            totals.TryGetValue(doc["_id"].AsString, out var t);
            bareMembers += Predicate(t.Total, t.Count) ? 1 : 0;
        }

        barePredicate = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"plain C# predicate over bare LiteDB scans (orders + customers): {barePredicate,8:0.00} s  ({bareMembers:N0} members)");
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

        // Same data path as the rebuild (customer page + the look-ups the script's fields need), C# predicate instead of the script.
        var needed = CustomerFacts.ReferencedFields(Script, "customer");
        sw.Restart();
        var withOrders = new HashSet<string>(StringComparer.Ordinal); // as the rebuild does: one scan tells who has orders
        for (string? o = null; ;)
        {
            var orderPage = await store.Orders.ListAsync(5000, o);
            withOrders.UnionWith(orderPage.Select(x => x.CustomerId));
            if (orderPage.Count < 5000)
            {
                break;
            }

            o = orderPage[^1].Id;
        }

        var csharpMembers = 0;
        var allFacts = new List<IReadOnlyList<object?>>();
        string? after = null;
        var now = DateTimeOffset.UtcNow;
        while (true)
        {
            var page = await store.Customers.ListAsync(1000, after);
            if (page.Count == 0)
            {
                break;
            }

            after = page[^1].Id;
            foreach (var c in page)
            {
                var facts = await CustomerFacts.LoadAsync(store, c, now, default, needed, withOrders.Contains(c.Id), false);
                csharpMembers += Predicate((double)facts["totalSpent"]!, (int)facts["orderCount"]!) ? 1 : 0;
                if (allFacts.Count < 200_000)
                {
                    allFacts.Add([facts]);
                }
            }
        }

        var csharpPass = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"engine read path + customer facts + C# predicate:  {csharpPass,8:0.00} s  ({csharpMembers:N0} members)");

        // The script alone over facts already in memory: the cost of JavaScript itself.
        var script = catalog.Find(RuleKind.Segment, Segment)!.Script;
        sw.Restart();
        var results = await engine.RunManyAsync(script, allFacts);
        var jsOnly = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var cs = allFacts.Count(f => { var d = (Dictionary<string, object?>)f[0]!; return Predicate((double)d["totalSpent"]!, (int)d["orderCount"]!); });
        var csOnly = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"script only, {allFacts.Count:N0} in-memory customers: Jint {jsOnly * 1e6 / allFacts.Count,6:0.0} µs/customer vs C# {csOnly * 1e6 / allFacts.Count,6:0.00} µs/customer ({results.Count(r => r.Value is true):N0} vs {cs:N0} members)");

        sw.Restart();
        var report = await segments.RebuildAsync(Segment);
        var rebuild = sw.Elapsed.TotalSeconds;
        Console.WriteLine($"engine full rebuild (facts + Jint + store members): {rebuild,8:0.00} s  ({report.Members:N0} members, {report.Failed} failed)  = {rebuild / bareScan:0.0}x the bare scan, {rebuild / csharpPass:0.00}x the C# pass");
        if (report.Members != bareMembers || report.Members != csharpMembers)
        {
            Console.WriteLine($"MISMATCH: engine {report.Members}, bare {bareMembers}, C# {csharpMembers}");
        }

        sw.Restart();
        var again = await segments.RebuildAsync(Segment);
        Console.WriteLine($"engine full rebuild again (no membership changes):  {sw.Elapsed.TotalSeconds,8:0.00} s  (+{again.Added} -{again.Removed})");

        // ---------------------------------------------------------------- change -> membership latency
        await segments.ProcessChangesAsync(); // stores the cursor
        await segments.StartAsync(CancellationToken.None);
        var latencies = new List<double>();
        var fresh = await store.Customers.ListAsync(samples, null);
        foreach (var c in fresh)
        {
            if (await segments.IsMemberAsync(Segment, c.Id))
            {
                continue;
            }

            var t = Stopwatch.StartNew();
            await store.Orders.CreateManyAsync([
                new Order { CustomerId = c.Id, Status = OrderStatus.Paid, OrderedAt = DateTimeOffset.UtcNow, Lines = [new OrderLine { Description = "x", Quantity = 1, UnitPrice = 800 }] },
                new Order { CustomerId = c.Id, Status = OrderStatus.Paid, OrderedAt = DateTimeOffset.UtcNow, Lines = [new OrderLine { Description = "y", Quantity = 1, UnitPrice = 800 }] },
            ]);
            while (!await segments.IsMemberAsync(Segment, c.Id))
            {
                if (t.Elapsed > TimeSpan.FromSeconds(30))
                {
                    break;
                }

                await Task.Delay(2);
            }

            latencies.Add(t.Elapsed.TotalMilliseconds);
        }

        await segments.StopAsync(CancellationToken.None);
        latencies.Sort();
        if (latencies.Count > 0)
        {
            Console.WriteLine($"change -> membership (order write until member), {latencies.Count} samples: median {latencies[latencies.Count / 2]:0} ms, max {latencies[^1]:0} ms (poll interval {rulesOptions.ChangePollInterval.TotalMilliseconds:0} ms)");
        }
    }
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
