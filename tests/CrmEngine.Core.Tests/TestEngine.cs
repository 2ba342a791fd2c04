using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Store;
using CrmEngine.Core;
using CrmEngine.Core.Pipeline;
using CrmEngine.Core.Storage;

namespace CrmEngine.Core.Tests;

/// <summary>A real engine store on a real LiteDB file in a temporary folder.</summary>
internal sealed class TestEngine : IDisposable
{
    private readonly bool _ownsFolder;

    public TestEngine(PipelineOptions? pipeline = null, string? folder = null, RecordingObserver? observer = null, TimeProvider? time = null)
    {
        _ownsFolder = folder is null;
        Folder = folder ?? Path.Combine(Path.GetTempPath(), "crm-core-tests", Guid.NewGuid().ToString("N"));
        Options = new StoreOptions { DataDirectory = Folder, FileName = "crm.db" };
        PipelineOptions = pipeline ?? new PipelineOptions { HandlerTimeout = TimeSpan.FromSeconds(10) };
        Observer = observer ?? new RecordingObserver();
        Database = new CrmDatabase(Options, time);
        Registry = new WriteHandlerRegistry();
        Pipeline = new WritePipeline(Database, Registry, PipelineOptions, () => [Observer]);
        Provider = new StoreProvider(Pipeline);
        Store = Provider.ForActor("user:alice");
    }

    public string Folder { get; }
    public StoreOptions Options { get; }
    public PipelineOptions PipelineOptions { get; }
    public RecordingObserver Observer { get; }
    public CrmDatabase Database { get; }
    public WriteHandlerRegistry Registry { get; }
    public WritePipeline Pipeline { get; }
    public StoreProvider Provider { get; }
    public ICrmStore Store { get; }

    public IDisposable On<T>(string owner, PipelineStage stage, Func<WriteEvent<T>, CancellationToken, Task> handler,
        string? entity = null, string? name = null, int order = 0) where T : class, IEntity =>
        Registry.Register(HandlerRegistration.Create(owner, entity ?? EntityOf<T>(), stage, order, name ?? $"{owner}:{stage}Handler", handler));

    public static string EntityOf<T>() => typeof(T).Name switch
    {
        nameof(Customer) => EntityNames.Customer,
        nameof(Activity) => EntityNames.Activity,
        nameof(Order) => EntityNames.Order,
        nameof(Product) => EntityNames.Product,
        nameof(ConsentEntry) => EntityNames.Consent,
        _ => throw new ArgumentException(typeof(T).Name),
    };

    public static Customer NewCustomer(string name = "Acme GmbH", string? email = null) => new()
    {
        Name = name,
        Emails = email is null ? [] : [email],
    };

    public void Dispose()
    {
        Database.Dispose();
        if (_ownsFolder)
        {
            TryDelete(Folder);
        }
    }

    public static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal sealed class RecordingObserver : IHandlerFaultObserver
{
    private readonly object _gate = new();

    public List<(string Owner, string Handler)> Succeeded { get; } = [];
    public List<(string Owner, string Handler, Exception Error)> Failed { get; } = [];

    public void OnHandlerSucceeded(string ownerId, string handlerName)
    {
        lock (_gate)
        {
            Succeeded.Add((ownerId, handlerName));
        }
    }

    public void OnHandlerFailed(string ownerId, string handlerName, Exception error)
    {
        lock (_gate)
        {
            Failed.Add((ownerId, handlerName, error));
        }
    }

    public List<(string Owner, string Handler, Exception Error)> FailedSnapshot()
    {
        lock (_gate)
        {
            return [.. Failed];
        }
    }
}
