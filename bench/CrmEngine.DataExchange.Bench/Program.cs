using System.Diagnostics;
using System.Globalization;
using Bogus;
using CrmEngine.Abstractions.Model;
using CrmEngine.Core;
using CrmEngine.DataExchange;
using CrmEngine.DataExchange.Csv;
using CrmEngine.DataExchange.Duplicates;
using LiteDB;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// Usage: CrmEngine.DataExchange.Bench [N=1000000] [--keep]
// 1. writes N generated customers (Bogus, fixed seed) to a CSV file, with 1 % seeded duplicates (same phone, or a
//    misspelt name at the same postcode) that the import tags but does not merge;
// 2. imports the file through the engine (every row through the pipeline, batches via WriteManyAsync);
// 3. baseline: bare LiteDB InsertBulk of the same cards as documents, in a fresh file;
// 4. duplicate scan over the imported store: groups found vs seeded.
var n = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal)) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : 1_000_000;
var keep = args.Contains("--keep");
var folder = Path.Combine(Path.GetTempPath(), "crm-dx-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(folder);
try
{
    Console.WriteLine($"N = {n:N0} customers, folder {folder}");
    var csv = Path.Combine(folder, "customers.csv");
    var clock = Stopwatch.StartNew();
    var (cards, seeded, pairs) = Generate(n);
    WriteCsv(csv, cards);
    Console.WriteLine($"generated and written in {clock.Elapsed.TotalSeconds:0.0} s ({new FileInfo(csv).Length / 1048576.0:0} MiB), {seeded} seeded duplicate pairs");

    // Engine import.
    var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Store:DataDirectory"] = Path.Combine(folder, "engine"),
        ["DataExchange:ImportBatchSize"] = "5000",
    }).Build();
    var services = new ServiceCollection().AddLogging().AddCrmCore(config);
    services.AddCrmDataExchange(config);
    await using var provider = services.BuildServiceProvider();
    var hosted = provider.GetServices<IHostedService>().ToList();
    foreach (var h in hosted)
    {
        await h.StartAsync(CancellationToken.None);
    }

    var lastPrint = Stopwatch.StartNew();
    var cpuBefore = CpuNow();
    var writerBefore = WriterCpu();
    var summary = await provider.GetRequiredService<CustomerImporter>().ImportFileAsync(csv, new ImportRequest { User = "bench" },
        new Progress<ImportProgress>(p =>
        {
            if (lastPrint.Elapsed.TotalSeconds >= 10)
            {
                lastPrint.Restart();
                Console.WriteLine($"  {p.Rows:N0} rows, {p.RowsPerSecond:0} rows/s");
            }
        }));
    var importCpu = CpuNow() - cpuBefore;
    var writerCpu = WriterCpu() - writerBefore;
    Console.Write("engine import: " + summary.ToText());
    Console.WriteLine($"  process CPU {importCpu.TotalSeconds:0.0} s ({importCpu.TotalMilliseconds * 1000 / n:0} µs per row, all threads: reading, look-ups, pipeline, LiteDB)");
    if (summary.Timings is { } t)
    {
        Console.WriteLine($"  importing thread (wall): read+map {t.ReadAndMap.TotalSeconds:0.0} s, batched look-ups {t.LookUps.TotalSeconds:0.0} s, waiting for the writer {t.WaitingForWrites.TotalSeconds:0.0} s");
    }

    Console.WriteLine($"  CPU by stage: store writer thread (pipeline + LiteDB writes) {writerCpu.TotalSeconds:0.0} s ({writerCpu.TotalMilliseconds * 1000 / n:0} µs per row), everything else (reading, mapping, look-ups, GC, LiteDB's disk writer) {(importCpu - writerCpu).TotalSeconds:0.0} s");

    // Bare LiteDB InsertBulk of the same cards.
    var bareFile = Path.Combine(folder, "bare.db");
    clock.Restart();
    cpuBefore = CpuNow();
    using (var bare = new LiteDatabase($"Filename={bareFile};Connection=direct"))
    {
        var mapper = new BsonMapper { SerializeNullValues = false };
        var col = bare.GetCollection("customers");
        col.InsertBulk(cards.Select(c =>
        {
            c.Id = ObjectId.NewObjectId().ToString();
            return mapper.ToDocument(c);
        }), 5000);
    }

    var bareSeconds = clock.Elapsed.TotalSeconds;
    var bareCpu = CpuNow() - cpuBefore;
    Console.WriteLine($"bare LiteDB InsertBulk: {n:N0} documents in {bareSeconds:0.0} s ({n / bareSeconds:0} docs/s), process CPU {bareCpu.TotalSeconds:0.0} s");

    // The fairer floor: what the engine stores per row, written with bare InsertBulk (no pipeline, no look-ups, no
    // checks): the card with the same look-up keys and LiteDB indexes, one change record and one audit entry holding
    // the after-image.
    clock.Restart();
    cpuBefore = CpuNow();
    // LiteDB opened on a file name syncs its journal after every page (see src/CrmEngine.Core/README.md), which makes this
    // baseline's wall time a measure of the disk and of the neighbours; on tmpfs (/dev/shm) it is the CPU-bound floor.
    var fullFolder = Directory.Exists("/dev/shm") ? Path.Combine("/dev/shm", Path.GetFileName(folder)) : folder;
    Directory.CreateDirectory(fullFolder);
    var parts = FullInsertBulk(Path.Combine(fullFolder, "bare-full.db"), cards);
    if (fullFolder != folder)
    {
        Directory.Delete(fullFolder, recursive: true);
    }

    var fullSeconds = clock.Elapsed.TotalSeconds;
    var fullCpu = CpuNow() - cpuBefore;
    Console.WriteLine($"bare LiteDB InsertBulk with the engine's indexes + change + audit documents (file in {fullFolder}): {fullSeconds:0.0} s ({n / fullSeconds:0} rows/s), process CPU {fullCpu.TotalSeconds:0.0} s");
    Console.WriteLine($"  of which CPU: cards with look-up keys and 8 indexes {parts.Cards.TotalSeconds:0.0} s, change records {parts.Changes.TotalSeconds:0.0} s, audit images {parts.Audit.TotalSeconds:0.0} s");
    Console.WriteLine($"engine import: {n / summary.Elapsed.TotalSeconds:0} rows/s, process CPU {importCpu.TotalSeconds:0.0} s");
    Console.WriteLine($"ratio engine import / bare InsertBulk: {summary.Elapsed.TotalSeconds / bareSeconds:0.0}x wall, {importCpu / bareCpu:0.0}x CPU");
    Console.WriteLine($"ratio engine import / bare InsertBulk with indexes + change + audit: {summary.Elapsed.TotalSeconds / fullSeconds:0.0}x wall, {importCpu / fullCpu:0.0}x CPU");

    // Duplicate scan.
    var groupsFile = Path.Combine(folder, "groups.csv");
    var scan = await provider.GetRequiredService<DuplicateScanner>().ScanAsync(groupsFile);
    Console.Write("duplicate scan: " + scan.ToText(null).Split('\n')[0] + "\n");
    Console.WriteLine($"seeded pairs {seeded}, groups found {scan.Groups} (random data can add real coincidences: same phone or similar names at one postcode)");

    // Recall: a seeded pair is found when the original (ERP id C<i>) and its copy (ERP id D<i>) share a group.
    var groupOf = new Dictionary<string, string>(StringComparer.Ordinal);
    foreach (var line in File.ReadLines(groupsFile).Skip(1))
    {
        var cells = line.TrimStart('\uFEFF').Split(',');
        groupOf[cells[1]] = cells[0];
    }

    var store = provider.GetRequiredService<CrmEngine.Core.Storage.IStoreProvider>().ForActor("bench");
    async Task<string?> IdOf(string erp) =>
        (await store.Customers.FindAsync(CrmEngine.Abstractions.Store.IndexedField.ExternalId, "erp:" + erp, 1)).FirstOrDefault()?.Id;
    int found = 0, foundSwap = 0, seededSwap = 0;
    foreach (var (original, copy) in pairs)
    {
        var a = await IdOf(original);
        var b = await IdOf(copy);
        var hit = a is not null && b is not null && groupOf.TryGetValue(a, out var ga) && groupOf.TryGetValue(b, out var gb) && ga == gb;
        var swap = int.Parse(copy[1..], CultureInfo.InvariantCulture) % 200 != 0;
        seededSwap += swap ? 1 : 0;
        found += hit ? 1 : 0;
        foundSwap += hit && swap ? 1 : 0;
    }

    Console.WriteLine($"recall: {found} of {pairs.Count} seeded pairs in one group ({100.0 * found / Math.Max(1, pairs.Count):0.0} %); misspelt names (swapped letters): {foundSwap} of {seededSwap}");

    foreach (var h in Enumerable.Reverse(hosted))
    {
        await h.StopAsync(CancellationToken.None);
    }
}
finally
{
    if (!keep)
    {
        Directory.Delete(folder, recursive: true);
    }
}

// CPU time of the whole process: on a shared machine wall time says more about the neighbours than about the code.
static TimeSpan CpuNow() => Process.GetCurrentProcess().TotalProcessorTime;

// CPU time of the engine's store writer thread (named "CrmEngine store writer"; Linux keeps 15 characters of a thread
// name): user + system clock ticks from /proc. Zero where /proc is missing.
static TimeSpan WriterCpu()
{
    if (!Directory.Exists("/proc/self/task"))
    {
        return TimeSpan.Zero;
    }

    foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
    {
        try
        {
            if (File.ReadAllText(Path.Combine(task, "comm")).Trim() != "CrmEngine store")
            {
                continue;
            }

            var stat = File.ReadAllText(Path.Combine(task, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ is 100 on Linux
        }
        catch (IOException)
        {
            // the thread ended meanwhile
        }
    }

    return TimeSpan.Zero;
}

static (List<Customer> Cards, int Seeded, List<(string Original, string Copy)> Pairs) Generate(int n)
{
    Randomizer.Seed = new Random(20261202);
    var faker = new Faker("de");
    var cards = new List<Customer>(n);
    var pairs = new List<(string, string)>();
    var seeded = 0;
    for (var i = 0; i < n; i++)
    {
        if (i > 0 && i % 100 == 0)
        {
            // A seeded duplicate of an earlier card that the import does not merge (no shared e-mail).
            var originalIndex = faker.Random.Int(Math.Max(0, i - 5000), i - 1);
            while (cards[originalIndex].ExternalIds.Count == 0 || !cards[originalIndex].ExternalIds["erp"].StartsWith('C'))
            {
                originalIndex--; // copies are not copied again: a pair is an original and its copy
            }

            var original = cards[originalIndex];
            var copy = new Customer
            {
                Name = i % 200 == 0 ? original.Name : Misspell(original.Name, faker),
                Emails = [$"dup{i}@example.test"],
                Phones = i % 200 == 0 ? [.. original.Phones] : [],
                Addresses = [new Address { Line1 = original.Addresses[0].Line1, PostalCode = original.Addresses[0].PostalCode, City = original.Addresses[0].City }],
                ExternalIds = { ["erp"] = "D" + i.ToString(CultureInfo.InvariantCulture) },
            };
            pairs.Add((original.ExternalIds["erp"], copy.ExternalIds["erp"]));
            if (i % 200 == 0)
            {
                copy.Addresses[0].PostalCode = faker.Address.ZipCode();
            }

            cards.Add(copy);
            seeded++;
            continue;
        }

        cards.Add(new Customer
        {
            Name = faker.Company.CompanyName() + " " + faker.Random.AlphaNumeric(4),
            Emails = [$"c{i}@{faker.Internet.DomainWord()}.test"],
            Phones = [$"+49 {faker.Random.Number(30, 999)} {faker.Random.Number(100000, 9999999)}"],
            Tags = [faker.PickRandom("lead", "b2b", "b2c", "key")],
            ExternalIds = { ["erp"] = "C" + i.ToString(CultureInfo.InvariantCulture) },
            Addresses = [new Address { Line1 = faker.Address.StreetAddress(), PostalCode = faker.Address.ZipCode(), City = faker.Address.City(), Country = "DE" }],
        });
    }

    return (cards, seeded, pairs);
}

// The documents the engine writes per imported row, stored with bare InsertBulk: the card with its look-up keys
// ("_ix", the same normalisation in short) under the same LiteDB indexes, a change record, an audit entry.
static (TimeSpan Cards, TimeSpan Changes, TimeSpan Audit) FullInsertBulk(string file, List<Customer> cards)
{
    TimeSpan cardCpu = default, changeCpu = default, auditCpu = default;
    using var db = new LiteDatabase($"Filename={file};Connection=direct");
    var mapper = new BsonMapper { SerializeNullValues = false };
    var customers = db.GetCollection("customers");
    foreach (var field in new[] { "email", "phone", "owner", "tag", "externalId", "name" })
    {
        customers.EnsureIndex("ix_" + field, "$._ix." + field + "[*]");
    }

    customers.EnsureIndex("dx_postcode", "$.Addresses[*].PostalCode");
    var changes = db.GetCollection("_changes");
    var audit = db.GetCollection("_audit");
    var at = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
    long seq = 0;
    foreach (var chunk in cards.Chunk(5000))
    {
        var cpu = CpuNow();
        var docs = chunk.Select(c =>
        {
            c.Id = Guid.CreateVersion7().ToString("N");
            var doc = mapper.ToDocument(c);
            BsonArray Keys(IEnumerable<string?> values) =>
                new(values.Where(v => !string.IsNullOrWhiteSpace(v)).Select(v => new BsonValue(v!.Trim().ToLowerInvariant() + "\u0001" + c.Id)));
            doc["_ix"] = new BsonDocument
            {
                ["email"] = Keys(c.Emails),
                ["phone"] = Keys(c.Phones.Select(p => new string(p.Where(ch => char.IsAsciiDigit(ch) || ch == '+').ToArray()))),
                ["owner"] = Keys([c.Owner]),
                ["tag"] = Keys(c.Tags),
                ["externalId"] = Keys(c.ExternalIds.Select(e => e.Key + ":" + e.Value)),
                ["name"] = Keys([c.Name]),
            };
            return doc;
        }).ToList();
        cardCpu += CpuNow() - cpu;
        cpu = CpuNow();
        customers.InsertBulk(docs, 5000);
        cardCpu += CpuNow() - cpu;
        cpu = CpuNow();
        var first = seq;
        changes.InsertBulk(chunk.Select(c => new BsonDocument
        {
            ["_id"] = ++seq, ["entity"] = "customer", ["entityId"] = c.Id, ["op"] = "Create", ["version"] = 1L, ["at"] = at, ["actor"] = "import:bench",
        }), 5000);
        changeCpu += CpuNow() - cpu;
        cpu = CpuNow();
        seq = first;
        audit.InsertBulk(docs.Select(d =>
        {
            var after = new BsonDocument();
            foreach (var (key, value) in d)
            {
                if (key != "_ix")
                {
                    after[key] = value;
                }
            }

            seq++;
            return new BsonDocument
            {
                ["_id"] = "customer\u0001" + d["_id"].AsString + "\u0001" + seq.ToString("D19", CultureInfo.InvariantCulture),
                ["seq"] = seq, ["entity"] = "customer", ["entityId"] = d["_id"], ["op"] = "Create", ["at"] = at, ["actor"] = "import:bench",
                ["after"] = after,
            };
        }), 5000);
        auditCpu += CpuNow() - cpu;
    }

    return (cardCpu, changeCpu, auditCpu);
}

static string Misspell(string name, Faker faker)
{
    var chars = name.ToCharArray();
    var at = faker.Random.Int(1, Math.Max(1, chars.Length - 7));
    (chars[at], chars[at + 1]) = (chars[at + 1], chars[at]);
    return new string(chars);
}

static void WriteCsv(string path, List<Customer> cards)
{
    using var writer = new StreamWriter(path, false, new System.Text.UTF8Encoding(false));
    writer.WriteLine("name,emails,phones,tags,externalId.erp,address.line1,address.postalCode,address.city,address.country");
    foreach (var c in cards)
    {
        var a = c.Addresses[0];
        writer.WriteLine(string.Join(",", Q(c.Name), Q(string.Join("|", c.Emails)), Q(string.Join("|", c.Phones)), Q(string.Join("|", c.Tags)),
            Q(c.ExternalIds.GetValueOrDefault("erp") ?? ""), Q(a.Line1), Q(a.PostalCode), Q(a.City), Q(a.Country)));
    }

    static string Q(string? v) => v is null ? "" : v.Contains(',') || v.Contains('"') ? "\"" + v.Replace("\"", "\"\"") + "\"" : v;
}
