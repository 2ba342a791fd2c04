// API GET-by-id latency under concurrent loopback load, beside two baselines measured in the same run:
// the same store reads in-process (no HTTP), and a bare Kestrel endpoint answering the same bytes.
//
//   dotnet run -c Release --project bench/CrmEngine.Api.Bench -- [customers] [callers] [seconds]
//
// Defaults: 10 000 customers, 16 concurrent callers, 10 s per measurement (after a 2 s warm-up).
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using CrmEngine.Abstractions.Http;
using CrmEngine.Abstractions.Model;
using CrmEngine.Api;
using CrmEngine.Api.Hosting;
using CrmEngine.Api.Keys;
using CrmEngine.Core;
using CrmEngine.Core.Storage;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var customers = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
var callers = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 16;
var seconds = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 10;
var measure = TimeSpan.FromSeconds(seconds);
var warmUp = TimeSpan.FromSeconds(2);

var root = Path.Combine(Path.GetTempPath(), "crm-api-bench", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(Path.Combine(root, "plugins"));
try
{
    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = root, DisableDefaults = true });
    builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Store:DataDirectory"] = Path.Combine(root, "data"),
        ["PluginHost:Directories:0"] = Path.Combine(root, "plugins"),
        ["Api:Urls"] = "http://127.0.0.1:0",
    });
    builder.Logging.ClearProviders();
    builder.Services.AddCrmCore(builder.Configuration);
    builder.Services.AddCrmPluginHost(builder.Configuration);
    builder.Services.AddCrmScheduling(builder.Configuration);
    builder.Services.AddCrmApi(builder.Configuration);
    using var host = builder.Build();
    await host.StartAsync();

    var store = host.Services.GetRequiredService<IStoreProvider>().ForActor("bench");
    var ids = new List<string>(customers);
    for (var start = 0; start < customers; start += 2_000)
    {
        var batch = Enumerable.Range(start, Math.Min(2_000, customers - start)).Select(i => new Customer
        {
            Name = $"Customer {i:D6}",
            Emails = [$"c{i}@example.com"],
            Phones = [$"+4930{i:D7}"],
            Tags = ["bench", i % 2 == 0 ? "even" : "odd"],
            Owner = $"rep-{i % 20}",
            Addresses = [new Address { Line1 = $"{i} Main Street", PostalCode = $"{10000 + (i % 9000)}", City = "Berlin", Country = "DE" }],
            Contacts = [new ContactPerson { Id = "p1", Name = $"Contact {i}", Email = $"p{i}@example.com" }],
        });
        ids.AddRange((await store.Customers.CreateManyAsync(batch)).Select(c => c.Id));
    }

    var key = (await host.Services.GetRequiredService<ApiKeyAdministration>().CreateAsync("bench", ApiScope.Read, null)).Key;
    var api = host.Services.GetRequiredService<ApiServer>().Addresses[0];

    // The bytes the API answers for each customer, served as they are by the bare endpoint.
    var bodies = new Dictionary<string, byte[]>(StringComparer.Ordinal);
    foreach (var id in ids)
    {
        bodies[id] = JsonSerializer.SerializeToUtf8Bytes(await store.Customers.GetAsync(id), ApiJson.Options);
    }

    await using var bare = await StartBareKestrelAsync(bodies);
    var bareAddress = bare.Urls.First();

    using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = callers, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
    using var http = new HttpClient(handler);

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"GET customer by id: {customers:N0} customers, {callers} concurrent callers, {measure.TotalSeconds:0} s each after {warmUp.TotalSeconds:0} s warm-up, {Environment.ProcessorCount} cores"));
    Console.WriteLine($"{"",-44} {"req/s",10} {"p50 ms",9} {"p99 ms",9} {"requests",10}");

    var inProcess = await RunAsync("store GetAsync in-process (no HTTP)", async (random, ct) =>
    {
        var customer = await store.Customers.GetAsync(ids[random.Next(ids.Count)], ct);
        if (customer is null)
        {
            throw new InvalidOperationException("customer missing");
        }
    });
    var bareKestrel = await RunAsync("bare Kestrel, same bytes (no auth, no store)", (random, ct) =>
        GetAsync(http, new Uri(bareAddress + "/c/" + ids[random.Next(ids.Count)]), null, ct));
    var engine = await RunAsync("API GET /api/customers/{id} (key, store, JSON)", (random, ct) =>
        GetAsync(http, new Uri(api, "/api/customers/" + ids[random.Next(ids.Count)]), key, ct));

    Console.WriteLine();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"API / bare Kestrel: {engine.PerSecond / bareKestrel.PerSecond:0.00}x throughput, p50 {engine.P50 / bareKestrel.P50:0.0}x, p99 {engine.P99 / bareKestrel.P99:0.0}x"));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"API / in-process store read: {engine.PerSecond / inProcess.PerSecond:0.00}x throughput, p50 {engine.P50 / inProcess.P50:0.0}x"));
    await host.StopAsync();
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

// Runs `call` from `callers` tasks for the warm-up, then for `measure`; each call's latency is recorded.
async Task<Result> RunAsync(string label, Func<Random, CancellationToken, Task> call)
{
    await Drive(warmUp, record: false);
    var (latencies, elapsed) = await Drive(measure, record: true);
    latencies.Sort();
    var result = new Result(
        latencies.Count / elapsed.TotalSeconds,
        Percentile(latencies, 0.50),
        Percentile(latencies, 0.99),
        latencies.Count);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{label,-44} {result.PerSecond,10:N0} {result.P50,9:0.000} {result.P99,9:0.000} {result.Requests,10:N0}"));
    return result;

    async Task<(List<double> Latencies, TimeSpan Elapsed)> Drive(TimeSpan duration, bool record)
    {
        using var stop = new CancellationTokenSource(duration);
        var perCaller = new List<double>[callers];
        var started = Stopwatch.GetTimestamp();
        var tasks = Enumerable.Range(0, callers).Select(n => Task.Run(async () =>
        {
            var random = new Random(n);
            var mine = perCaller[n] = new List<double>(100_000);
            while (!stop.IsCancellationRequested)
            {
                var t0 = Stopwatch.GetTimestamp();
                await call(random, CancellationToken.None);
                if (record)
                {
                    mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var elapsed = Stopwatch.GetElapsedTime(started);
        return (perCaller.SelectMany(l => l).ToList(), elapsed);
    }
}

static double Percentile(List<double> sorted, double p) =>
    sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

static async Task GetAsync(HttpClient http, Uri url, string? key, CancellationToken ct)
{
    using var request = new HttpRequestMessage(HttpMethod.Get, url);
    if (key is not null)
    {
        request.Headers.Add("X-Api-Key", key);
    }

    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
    if (response.StatusCode != HttpStatusCode.OK)
    {
        throw new InvalidOperationException($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
    }
}

static async Task<WebApplication> StartBareKestrelAsync(Dictionary<string, byte[]> bodies)
{
    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.ClearProviders();
    builder.WebHost.UseUrls("http://127.0.0.1:0");
    var app = builder.Build();
    app.MapGet("/c/{id}", (string id) => bodies.TryGetValue(id, out var body)
        ? Results.Bytes(body, "application/json; charset=utf-8")
        : Results.NotFound());
    await app.StartAsync();
    return app;
}

internal sealed record Result(double PerSecond, double P50, double P99, int Requests);
