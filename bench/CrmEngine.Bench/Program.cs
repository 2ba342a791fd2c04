using System.Diagnostics;
using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using LiteDB;

// Usage: dotnet run -c Release --project bench/CrmEngine.Bench -- [N] [batchSize]
var n = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
var batch = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5_000;
var singles = Math.Min(n, 500);
var root = Path.Combine(Path.GetTempPath(), "crm-bench-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(root);

Console.WriteLine($"CrmEngine store benchmark: N = {n:N0} customers, batch = {batch:N0}, {Environment.ProcessorCount} cores, .NET {Environment.Version}");
Console.WriteLine($"Temp folder: {root}");
Console.WriteLine();

try
{
    var customers = Generate(n);
    var results = new List<(string Name, int Count, TimeSpan Time, string Baseline)>();

    // ---- engine: batch inserts through the full pipeline (validate, index keys, change feed, audit), one transaction per batch
    TimeSpan engineInsert, engineUpdate, engineRead, engineSingles, engineConcurrent, engineFind;
    string[] ids;
    using (var db = new CrmDatabase(new StoreOptions { DataDirectory = Path.Combine(root, "engine"), FileName = "crm.db" }))
    {
        var pipeline = new WritePipeline(db, new WriteHandlerRegistry(), new PipelineOptions());
        var store = new StoreProvider(pipeline).ForActor("bench");
        var sw = Stopwatch.StartNew();
        var created = new List<Customer>(n);
        foreach (var chunk in customers.Chunk(batch))
        {
            var outcome = await store.Customers.WriteManyAsync(chunk.Select(c => new BulkWrite<Customer>(BulkOperation.Create, c)).ToList());
            created.AddRange(outcome.Select(r => r.Stored ?? throw new InvalidOperationException(r.Error!.Message)));
        }

        engineInsert = sw.Elapsed;
        ids = created.Select(c => c.Id).ToArray();

        // bulk update of every record (a changed stage and a new tag), through the full pipeline
        foreach (var c in created)
        {
            c.Stage = LifecycleStage.RepeatCustomer;
            c.Tags.Add("bulk-updated");
        }

        sw.Restart();
        foreach (var chunk in created.Chunk(batch))
        {
            var outcome = await store.Customers.WriteManyAsync(chunk.Select(c => new BulkWrite<Customer>(BulkOperation.Update, c)).ToList());
            if (outcome.FirstOrDefault(r => !r.Succeeded) is { } failed)
            {
                throw new InvalidOperationException(failed.Error!.Message);
            }
        }

        engineUpdate = sw.Elapsed;

        // one CreateAsync per record: a transaction (and a durable commit) per write
        sw.Restart();
        foreach (var c in Generate(singles, offset: n))
        {
            await store.Customers.CreateAsync(c);
        }

        engineSingles = sw.Elapsed;

        // the same number of single writes from 16 concurrent callers: commits queue up and share one journal flush
        var pendingSingles = new Queue<Customer>(Generate(singles, offset: n + singles));
        sw.Restart();
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
        {
            while (true)
            {
                Customer next;
                lock (pendingSingles)
                {
                    if (!pendingSingles.TryDequeue(out next!))
                    {
                        return;
                    }
                }

                await store.Customers.CreateAsync(next);
            }
        }));
        engineConcurrent = sw.Elapsed;

        sw.Restart();
        var read = 0;
        string? after = null;
        IReadOnlyList<Customer> page;
        while ((page = await store.Customers.ListAsync(1_000, after)).Count > 0)
        {
            read += page.Count;
            after = page[^1].Id;
        }

        engineRead = sw.Elapsed;
        if (read != n + 2 * singles)
        {
            throw new InvalidOperationException($"engine read {read}, expected {n + 2 * singles}");
        }

        var lookups = Math.Min(n, 1_000);
        sw.Restart();
        for (var i = 0; i < lookups; i++)
        {
            var hit = await store.Customers.FindAsync("email", customers[i * (n / lookups)].Emails[0].ToUpperInvariant(), 10);
            if (hit.Count != 1)
            {
                throw new InvalidOperationException("look-up missed");
            }
        }

        engineFind = sw.Elapsed;
        results.Add(("find by e-mail (index, case-insensitive)", lookups, engineFind, ""));
    }

    // ---- baseline: bare LiteDB, the same documents (same mapper, same ids), one InsertBulk
    TimeSpan bareInsert, bareRead, bareScan;
    using (var bare = new LiteDatabase($"Filename={Path.Combine(root, "bare.db")};Connection=direct"))
    {
        var mapper = CrmBsonMapper.Create();
        var docs = customers.Select((c, i) =>
        {
            c.Id = ids[i];
            c.Version = 1;
            return mapper.ToDocument(c);
        }).ToList();
        var col = bare.GetCollection("customers");
        var sw = Stopwatch.StartNew();
        col.InsertBulk(docs, batch);
        bareInsert = sw.Elapsed;

        sw.Restart();
        var count = col.FindAll().Select(d => mapper.ToObject<Customer>(d)).Count();
        bareRead = sw.Elapsed;

        sw.Restart();
        var raw = col.FindAll().Count();
        bareScan = sw.Elapsed;
        if (count != n || raw != n)
        {
            throw new InvalidOperationException("bare read mismatch");
        }
    }

    // ---- second baseline: bare LiteDB doing the same storage work the engine does per record
    // (document with look-up keys and the same indexes, a change record, a field-level audit record),
    // one transaction per batch, without the pipeline: the difference to the engine is the pipeline itself.
    TimeSpan sameWorkInsert, sameWorkUpdate;
    using (var sameWork = new CrmDatabase(new StoreOptions { DataDirectory = Path.Combine(root, "same-work"), FileName = "crm.db" }))
    {
        var pipeline = new WritePipeline(sameWork, new WriteHandlerRegistry(), new PipelineOptions());
        var lite = sameWork.Database;
        var prepared = customers.Select((c, i) =>
        {
            c.Id = ids[i];
            var doc = pipeline.ToDocument(CoreEntities.Customer, c);
            var audit = new BsonArray(AuditDiff.Compute(null, doc).Select(f => (BsonValue)new BsonDocument { ["f"] = f.Field, ["a"] = f.After }));
            return (Doc: doc, Audit: audit);
        }).ToList();
        var sw = Stopwatch.StartNew();
        long seq = 0;
        foreach (var chunk in prepared.Chunk(batch))
        {
            await sameWork.WriteAsync(_ =>
            {
                foreach (var (doc, audit) in chunk)
                {
                    seq++;
                    lite.GetCollection("customers").Insert(doc);
                    lite.GetCollection("_changes").Insert(new BsonDocument { ["_id"] = seq, ["entity"] = "customer", ["entityId"] = doc["_id"], ["op"] = "Create", ["version"] = 1, ["at"] = "t", ["actor"] = "bench" });
                    lite.GetCollection("_audit").Insert(new BsonDocument { ["_id"] = "customer\u0001" + doc["_id"].AsString + "\u0001" + seq, ["seq"] = seq, ["changes"] = audit });
                }

                return 0;
            });
        }

        sameWorkInsert = sw.Elapsed;

        // the same update as the engine's: the document with its new keys, a change record, an audit record of the changed fields
        var updated = prepared.Select((p, i) =>
        {
            var c = customers[i];
            c.Stage = LifecycleStage.RepeatCustomer;
            c.Tags.Add("bulk-updated");
            c.Version = 2;
            var after = pipeline.ToDocument(CoreEntities.Customer, c);
            var audit = new BsonArray(AuditDiff.Compute(p.Doc, after).Select(f => (BsonValue)new BsonDocument { ["f"] = f.Field, ["b"] = f.Before, ["a"] = f.After }));
            return (Doc: after, Audit: audit);
        }).ToList();
        sw.Restart();
        foreach (var chunk in updated.Chunk(batch))
        {
            await sameWork.WriteAsync(_ =>
            {
                foreach (var (doc, audit) in chunk)
                {
                    seq++;
                    lite.GetCollection("customers").Update(doc);
                    lite.GetCollection("_changes").Insert(new BsonDocument { ["_id"] = seq, ["entity"] = "customer", ["entityId"] = doc["_id"], ["op"] = "Update", ["version"] = 2, ["at"] = "t", ["actor"] = "bench" });
                    lite.GetCollection("_audit").Insert(new BsonDocument { ["_id"] = "customer\u0001" + doc["_id"].AsString + "\u0001" + seq, ["seq"] = seq, ["changes"] = audit });
                }

                return 0;
            });
        }

        sameWorkUpdate = sw.Elapsed;
    }

    static string Rate(int count, TimeSpan t) => (count / Math.Max(t.TotalSeconds, 1e-9)).ToString("N0", CultureInfo.InvariantCulture) + "/s";
    static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("N0", CultureInfo.InvariantCulture) + " ms";

    Console.WriteLine($"{"measure",-58} {"count",10} {"time",12} {"rate",14}");
    void Row(string name, int count, TimeSpan t) => Console.WriteLine($"{name,-58} {count,10:N0} {Ms(t),12} {Rate(count, t),14}");
    Row("insert: engine WriteManyAsync (full pipeline, batches)", n, engineInsert);
    Row("insert: bare LiteDatabase.InsertBulk (same documents)", n, bareInsert);
    Console.WriteLine($"{"  engine / bare",-58} {engineInsert / bareInsert,33:0.0}x");
    Row("insert: bare LiteDB, same storage work (indexes+change+audit)", n, sameWorkInsert);
    Console.WriteLine($"{"  engine / same storage work (= pipeline overhead)",-58} {engineInsert / sameWorkInsert,33:0.0}x");
    Row("update: engine WriteManyAsync (full pipeline, batches)", n, engineUpdate);
    Row("update: bare LiteDB, same storage work (indexes+change+audit)", n, sameWorkUpdate);
    Console.WriteLine($"{"  engine / same storage work",-58} {engineUpdate / sameWorkUpdate,33:0.0}x");
    Row("insert: engine CreateAsync, one write per call", singles, engineSingles);
    Row("insert: engine CreateAsync, 16 concurrent callers", singles, engineConcurrent);
    Row("read: engine ListAsync pages of 1000 (mapped)", n + 2 * singles, engineRead);
    Row("read: bare FindAll mapped to Customer", n, bareRead);
    Row("read: bare FindAll raw documents (scan)", n, bareScan);
    Console.WriteLine($"{"  engine / bare mapped (per record)",-58} {engineRead.TotalSeconds / (n + 2 * singles) / (bareRead.TotalSeconds / n),33:0.0}x");
    foreach (var r in results)
    {
        Row(r.Name, r.Count, r.Time);
    }

    // Host start-up time to "ready": the real crm binary on an empty content root (HostStartupBench.cs).
    var host = CrmEngine.Bench.HostStartupBench.Measure(3, out var hostSkipped);
    if (host is null)
    {
        Console.WriteLine($"{"host start-up to ready",-58} ({hostSkipped})");
    }
    else
    {
        Console.WriteLine($"{"host start-up to ready (wall clock, median of 3)",-58} {"",10} {Ms(host.Ready),12}");
        Console.WriteLine($"{"  as the host logs it (from process start)",-58} {"",10} {Ms(host.ReadyReported),12}");
        Console.WriteLine($"{"  baseline: same binary, no engine (crm --help)",-58} {"",10} {Ms(host.Baseline),12}");
    }
}
finally
{
    try
    {
        Directory.Delete(root, recursive: true);
    }
    catch (IOException)
    {
    }
}

static List<Customer> Generate(int count, int offset = 0)
{
    string[] stages = ["Prospect", "NewCustomer", "RepeatCustomer", "LoyalCustomer"];
    string[] cities = ["Berlin", "München", "北京", "上海", "Paris", "Wien"];
    var list = new List<Customer>(count);
    for (var k = 0; k < count; k++)
    {
        var i = k + offset;
        list.Add(new Customer
        {
            Kind = i % 3 == 0 ? CustomerKind.Person : CustomerKind.Organisation,
            Stage = Enum.Parse<LifecycleStage>(stages[i % stages.Length]),
            Name = i % 5 == 0 ? $"客户 {i}" : $"Customer {i} GmbH",
            Owner = $"rep:{i % 50}",
            Emails = [$"contact{i}@example{i % 100}.com"],
            Phones = [$"+49 30 {i:D7}"],
            Tags = i % 2 == 0 ? ["b2b", $"segment-{i % 10}"] : [$"segment-{i % 10}"],
            ExternalIds = { ["erp"] = $"C{i:D7}" },
            Addresses = [new Address { Line1 = $"Street {i}", City = cities[i % cities.Length], PostalCode = $"{10000 + i % 89999}", Country = "DE" }],
            CreditLimit = i % 1000 * 10m,
            OverdueAmount = i % 7 == 0 ? 99.5m : 0m,
            Profile = new CustomerProfile { Region = $"R{i % 12}", Interests = ["golf"] },
            Custom = { ["score"] = CustomValue.Of(i % 100) },
        });
    }

    return list;
}
