// Access checks on the read path, in one run over one store:
//   GET by id   : bare GetAsync | + check as administrator | + check and field mask as a salesperson (own depth)
//   search page : bare ListAsync (first page after a random cursor) | administrator (filter = all) |
//                 salesperson (own depth: one owner-index scan) | sales manager (unit and below: many owners)
//
//   over HTTP   : GET /api/customers/{id} and GET /api/customers?limit=50&after= as the administrator and as a
//                 salesperson, each with an API key bound to that user (the API's own access enforcement)
//
//   dotnet run -c Release --project bench/CrmEngine.Security.Bench -- [customers] [reps] [seconds]
//
// Defaults: 100 000 customers spread over 1 000 reps (100 each) in 10 units under sales, 5 s per line.
using System.Diagnostics;
using System.Globalization;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Model;
using CrmEngine.Api;
using CrmEngine.Api.Keys;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling;
using CrmEngine.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var customers = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
var reps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1_000;
var seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 5;
var folder = Path.Combine(Path.GetTempPath(), "crm-security-bench", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(Path.Combine(folder, "plugins"));
// The engine as the host wires it for the API (store, plugin host, scheduler, access model, HTTP API on a free port).
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = folder, DisableDefaults = true });
builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Store:DataDirectory"] = Path.Combine(folder, "data"),
    ["PluginHost:Directories:0"] = Path.Combine(folder, "plugins"),
    ["Api:Urls"] = $"http://127.0.0.1:{FreePort()}",
});
builder.Logging.ClearProviders();
builder.Services.AddCrmCore(builder.Configuration);
builder.Services.AddCrmPluginHost(builder.Configuration);
builder.Services.AddCrmScheduling(builder.Configuration);
builder.Services.AddCrmSecurity();
builder.Services.AddCrmApi(builder.Configuration);
var host = builder.Build();
await host.StartAsync();
var services = host.Services;
try
{
    var security = services.GetRequiredService<SecurityAdministration>();
    await security.SeedAsync(SeedFile.Load(Path.Combine(FindRoot(), "security.json")), "admin");
    var units = Enumerable.Range(0, 10).Select(u => $"sales-{u}").ToList();
    var seed = new SeedFile
    {
        Path = "bench",
        Units = units.Select(u => new BusinessUnit { Id = u, Name = u, Parent = "sales" }).ToList(),
        Users = Enumerable.Range(0, reps).Select(r => new SecurityUser { Id = Rep(r), Name = Rep(r), BusinessUnit = units[r % units.Count], Roles = ["salesperson"] })
            .Append(new SecurityUser { Id = "manager", Name = "Manager", BusinessUnit = "sales", Roles = ["sales-manager"] }).ToList(),
    };
    await security.SeedAsync(seed, "admin");

    var store = services.GetRequiredService<IStoreProvider>().ForActor("bench");
    var ids = new List<string>(customers);
    var load = Stopwatch.StartNew();
    for (var start = 0; start < customers; start += 5_000)
    {
        var batch = Enumerable.Range(start, Math.Min(5_000, customers - start))
            .Select(i => new BulkWrite<Customer>(BulkOperation.Create, new Customer { Name = $"Customer {i:D7}", Owner = Rep(i % reps), CreditLevel = "B", OverdueAmount = i % 100 }))
            .ToList();
        ids.AddRange((await store.Customers.WriteManyAsync(batch)).Select(r => r.Stored!.Id));
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{customers:N0} customers, {reps:N0} reps ({customers / reps:N0} each), loaded in {load.Elapsed.TotalSeconds:0} s; {seconds:0} s per line, {Environment.ProcessorCount} cores"));
    var rep = Rep(7);
    var mine = ids.Where((_, i) => i % reps == 7).ToList();
    var admin = await security.ContextForAsync("admin");
    var salesperson = await security.ContextForAsync(rep);
    var manager = await security.ContextForAsync("manager");
    var mask = salesperson.Fields(EntityNames.Customer);

    Console.WriteLine($"{"GET by id",-52} {"calls/s",10} {"p50 µs",9} {"p99 µs",9}");
    await Run("bare store GetAsync", async r => { await store.Customers.GetAsync(ids[r.Next(ids.Count)]); });
    await Run("administrator: GetAsync + Check", async r =>
    {
        var c = (await store.Customers.GetAsync(ids[r.Next(ids.Count)]))!;
        Require(admin.Check(Privilege.Read, new RecordRef(EntityNames.Customer, c.Id, c.Owner)).Allowed);
    });
    await Run("salesperson (own): GetAsync + Check + field mask", async r =>
    {
        var c = (await store.Customers.GetAsync(mine[r.Next(mine.Count)]))!;
        Require(salesperson.Check(Privilege.Read, new RecordRef(EntityNames.Customer, c.Id, c.Owner)).Allowed);
        mask.Apply(c);
    });

    Console.WriteLine($"{"search: one page of 50 in id order",-52} {"pages/s",10} {"p50 µs",9} {"p99 µs",9}");
    await Run("bare store ListAsync after a random cursor", async r => { await store.Customers.ListAsync(50, ids[r.Next(ids.Count)]); });
    await Run("administrator: filter (all) + page", async r =>
    {
        await VisibleRecords.PageAsync(store.Customers, admin.Filter(EntityNames.Customer), c => c.Owner, 50, ids[r.Next(ids.Count)]);
    });
    await Run("salesperson (own): filter + page (owner index)", async r =>
    {
        var page = await VisibleRecords.PageAsync(store.Customers, salesperson.Filter(EntityNames.Customer), c => c.Owner, 50, mine[r.Next(mine.Count)]);
        Require(page.All(c => c.Owner == rep));
    });
    await Run("sales manager (unit and below): filter + page (scan)", async r =>
    {
        await VisibleRecords.PageAsync(store.Customers, manager.Filter(EntityNames.Customer), c => c.Owner, 50, ids[r.Next(ids.Count)]);
    });
    // Over real HTTP: keys bound to the two users, so the API's own enforcement (check, mask, filtered page) answers.
    var keys = services.GetRequiredService<ApiKeyAdministration>();
    var adminKey = (await keys.CreateAsync("bench-admin", ApiScope.Read, null, "admin")).Key;
    var repKey = (await keys.CreateAsync("bench-rep", ApiScope.Read, null, rep)).Key;
    using var http = new HttpClient { BaseAddress = new Uri(builder.Configuration["Api:Urls"]! + "/") };
    async Task Get(string path, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("X-Api-Key", key);
        using var response = await http.SendAsync(request);
        Require(response.IsSuccessStatusCode);
        await response.Content.ReadAsByteArrayAsync();
    }

    Console.WriteLine($"{"over HTTP (one caller, keep-alive)",-52} {"calls/s",10} {"p50 µs",9} {"p99 µs",9}");
    await Run("HTTP administrator: GET /api/customers/{id}", r => Get($"api/customers/{ids[r.Next(ids.Count)]}", adminKey));
    await Run("HTTP salesperson (own): GET /api/customers/{id}", r => Get($"api/customers/{mine[r.Next(mine.Count)]}", repKey));
    await Run("HTTP administrator: GET /api/customers?limit=50", r => Get($"api/customers?limit=50&after={ids[r.Next(ids.Count)]}", adminKey));
    await Run("HTTP salesperson (own): GET /api/customers?limit=50", r => Get($"api/customers?limit=50&after={mine[r.Next(mine.Count)]}", repKey));

    // The first line of a block also warms LiteDB's page cache; the same bare call again shows how much.
    await Run("bare store ListAsync again (cache warm)", async r => { await store.Customers.ListAsync(50, ids[r.Next(ids.Count)]); });
    await Run("bare store GetAsync again (cache warm)", async r => { await store.Customers.GetAsync(ids[r.Next(ids.Count)]); });
}
finally
{
    await host.StopAsync();
    host.Dispose();
    Directory.Delete(folder, recursive: true);
}

async Task Run(string name, Func<Random, Task> call)
{
    var random = new Random(42);
    var until = Stopwatch.GetTimestamp() + (long)(0.5 * Stopwatch.Frequency);
    while (Stopwatch.GetTimestamp() < until)
    {
        await call(random);
    }

    var times = new List<double>();
    var watch = Stopwatch.StartNew();
    while (watch.Elapsed.TotalSeconds < seconds)
    {
        var t = Stopwatch.GetTimestamp();
        await call(random);
        times.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
    }

    times.Sort();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{name,-52} {times.Count / watch.Elapsed.TotalSeconds,10:N0} {times[times.Count / 2],9:N0} {times[(int)(times.Count * 0.99)],9:N0}"));
}

static string Rep(int i) => $"rep-{i:D4}";

static int FreePort()
{
    using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
    listener.Start();
    return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
}

static void Require(bool condition)
{
    if (!condition)
    {
        throw new InvalidOperationException("the bench's own check failed");
    }
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "security.json")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? throw new InvalidOperationException("security.json not found above " + AppContext.BaseDirectory);
}
