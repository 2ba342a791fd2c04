using System.Diagnostics;
using System.Globalization;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;
using LiteDB;

namespace CrmEngine.Bench;

/// <summary>
/// Where the time of a bulk create goes: each piece of the storage work and each CPU step of the
/// pipeline measured alone on the same records (<c>dotnet run ... -- stages [N] [batch]</c>).
/// Used to decide what to make faster; the main run prints the end-to-end figures.
/// </summary>
internal static class StoreStages
{
    public static async Task RunAsync(List<Customer> customers, int batch, string root)
    {
        var n = customers.Count;
        Console.WriteLine($"{"stage",-62} {"time",10} {"per record",12}");
        void Row(string name, TimeSpan t) =>
            Console.WriteLine($"{name,-62} {t.TotalMilliseconds,8:N0} ms {t.TotalMilliseconds * 1000 / n,9:N1} µs");

        var mapper = CrmBsonMapper.Create();
        var sw = Stopwatch.StartNew();
        var docs = customers.Select(c =>
        {
            c.Id = PipelineIds.Next();
            c.Version = 1;
            return mapper.ToDocument(c);
        }).ToList();
        Row("cpu: mapper ToDocument", sw.Elapsed);

        sw.Restart();
        foreach (var d in docs)
        {
            _ = mapper.ToObject<Customer>(d);
        }

        Row("cpu: mapper ToObject", sw.Elapsed);

        using (var probe = new CrmDatabase(new StoreOptions { DataDirectory = Path.Combine(root, "probe"), FileName = "crm.db" }))
        {
            var pipeline = new WritePipeline(probe, new WriteHandlerRegistry(), new PipelineOptions());
            sw.Restart();
            foreach (var c in customers)
            {
                _ = pipeline.ToDocument(CoreEntities.Customer, c);
            }

            Row("cpu: engine ToDocument (document + look-up keys)", sw.Elapsed);
        }

        sw.Restart();
        foreach (var d in docs)
        {
            _ = AuditDiff.Compute(null, d);
        }

        Row("cpu: AuditDiff.Compute(null, after) (field-level create audit)", sw.Elapsed);

        sw.Restart();
        foreach (var c in customers)
        {
            var ctx = new ValidationContext((_, _) => true);
            CoreEntities.Customer.Validate!(c, ctx);
        }

        Row("cpu: core validation", sw.Elapsed);

        // Storage pieces, each alone, one transaction per batch (bare LiteDB calls on an engine file).
        await Storage("store: document, no look-up index", root, "s1", customers, batch, (db, c, i) =>
            db.GetCollection("plain").Insert(docs[i]));
        await Storage("store: change record", root, "s2", customers, batch, (db, c, i) =>
            db.GetCollection("_changes").Insert(new BsonDocument { ["_id"] = (long)i + 1, ["entity"] = "customer", ["entityId"] = c.Id, ["op"] = "Create", ["version"] = 1L, ["at"] = "2026-01-01T00:00:00.0000000+00:00", ["actor"] = "bench" }));
        var auditArrays = docs.Select(d => new BsonArray(AuditDiff.Compute(null, d).Select(f => (BsonValue)new BsonDocument { ["f"] = f.Field, ["a"] = f.After }))).ToList();
        await Storage("store: audit record, field-level (f/a per field)", root, "s3", customers, batch, (db, c, i) =>
            db.GetCollection("_audit").Insert(new BsonDocument { ["_id"] = "customer\u0001" + c.Id + "\u0001" + i.ToString("D19", CultureInfo.InvariantCulture), ["seq"] = (long)i, ["changes"] = auditArrays[i] }));
        await Storage("store: audit record, compact (after image once)", root, "s4", customers, batch, (db, c, i) =>
            db.GetCollection("_audit").Insert(new BsonDocument { ["_id"] = "customer\u0001" + c.Id + "\u0001" + i.ToString("D19", CultureInfo.InvariantCulture), ["seq"] = (long)i, ["image"] = docs[i] }));

        var perField = docs.Select((d, i) => WithKeys(d, customers[i], single: false)).ToList();
        await Storage("store: document + one index per look-up field (6)", root, "s5", customers, batch, (db, c, i) =>
        {
            var col = db.GetCollection("customers");
            foreach (var f in CoreEntities.Customer.Indexes)
            {
                col.EnsureIndex("ix_" + f.Field, "$._ix." + f.Field + "[*]");
            }

            col.Insert(perField[i]);
        });
        var single = docs.Select((d, i) => WithKeys(d, customers[i], single: true)).ToList();
        await Storage("store: document + one multi-key index (field\\u0002key\\u0001id)", root, "s6", customers, batch, (db, c, i) =>
        {
            var col = db.GetCollection("customers");
            col.EnsureIndex("ix_keys", "$._ix[*]");
            col.Insert(single[i]);
        });
    }

    /// <summary>Only the engine's bulk create (WriteManyAsync), for a profiler: <c>-- bulk [N] [batch]</c>.</summary>
    public static async Task BulkOnlyAsync(List<Customer> customers, int batch, string root)
    {
        using var db = new CrmDatabase(new StoreOptions { DataDirectory = Path.Combine(root, "bulk"), FileName = "crm.db" });
        var pipeline = new WritePipeline(db, new WriteHandlerRegistry(), new PipelineOptions());
        var store = new StoreProvider(pipeline).ForActor("bench");
        var sw = Stopwatch.StartNew();
        foreach (var chunk in customers.Chunk(batch))
        {
            var results = await store.Customers.WriteManyAsync(chunk.Select(c => new BulkWrite<Customer>(BulkOperation.Create, c)).ToList());
            if (results.FirstOrDefault(r => !r.Succeeded) is { } failed)
            {
                throw new InvalidOperationException(failed.Error!.ToString());
            }
        }

        Console.WriteLine($"bulk create: {customers.Count:N0} in {sw.Elapsed.TotalMilliseconds:N0} ms = {customers.Count / sw.Elapsed.TotalSeconds:N0}/s");
        var bytes = customers.Take(100).Select(c => BsonSerializer.Serialize(pipeline.ToDocument(CoreEntities.Customer, c)).Length).Average();
        Console.WriteLine($"average stored customer document: {bytes:N0} bytes");
    }

    private static BsonDocument WithKeys(BsonDocument doc, Customer c, bool single)
    {
        var copy = new BsonDocument();
        foreach (var (k, v) in doc)
        {
            copy[k] = v;
        }

        var flat = new BsonArray();
        var ix = new BsonDocument();
        foreach (var def in CoreEntities.Customer.Indexes)
        {
            var keys = new BsonArray();
            foreach (var raw in def.Keys(c))
            {
                if (raw is not null && def.Normalize(raw) is { } key)
                {
                    keys.Add(key + "\u0001" + c.Id);
                    flat.Add(def.Field + "\u0002" + key + "\u0001" + c.Id);
                }
            }

            ix[def.Field] = keys;
        }

        copy["_ix"] = single ? flat : ix;
        return copy;
    }

    private static async Task Storage(string name, string root, string folder, List<Customer> customers, int batch,
        Action<LiteDatabase, Customer, int> insert)
    {
        using var db = new CrmDatabase(new StoreOptions { DataDirectory = Path.Combine(root, folder), FileName = "crm.db" });
        var lite = db.Database;
        var sw = Stopwatch.StartNew();
        for (var start = 0; start < customers.Count; start += batch)
        {
            var from = start;
            var to = Math.Min(customers.Count, start + batch);
            await db.WriteAsync(_ =>
            {
                for (var i = from; i < to; i++)
                {
                    insert(lite, customers[i], i);
                }

                return 0;
            });
        }

        var elapsed = sw.Elapsed;
        Console.WriteLine($"{name,-62} {elapsed.TotalMilliseconds,8:N0} ms {elapsed.TotalMilliseconds * 1000 / customers.Count,9:N1} µs");
    }
}

internal static class PipelineIds
{
    public static string Next() => WritePipeline.NewId();
}
