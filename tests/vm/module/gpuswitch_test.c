// SPDX-License-Identifier: GPL-2.0
/*
 * gpuswitch_test: a stand-in for the nvidia driver in the test VM.
 *
 * It drives QEMU's "edu" device (1234:11e8), one function of the emulated
 * GPU, and behaves as nvidia does where it matters to gpuswitch: each bound
 * function has a character device (/dev/gpuswitch-testN), and remove()
 * waits, uninterruptibly, until nobody uses the function any more.  So an
 * unbind written while a process holds the node blocks the writer until the
 * holder lets go.
 *
 * The "pin" parameter adds a user that no process shows (as nvidia's usage
 * count also counts users inside the kernel): with pin=1 an unbind blocks
 * although no holder can be found.
 *
 * The "fail_probe" parameter makes the next N probes fail with -EIO, as a
 * GPU that does not come up (nvidia's RmInitAdapter failing): 1 fails once
 * and then works, a large N always fails.  The tests use it in place of
 * fault injection in the daemon.
 *
 * With "nvidia_procfs" set, each bound function also has nvidia's
 * /proc/driver/nvidia/gpus/ADDR: "information" with its Device Minor, and
 * "unbindLock", which a write of 1 takes only when nobody uses the
 * function (the pin, an in-kernel user, included), reading back 1 then, and
 * a write of 0 releases; while it is held the node cannot be opened.  Off
 * by default: the tests that hold an unbind with the pin need a user that
 * nothing shows.
 *
 * With "nvidia_procfs" set the module also takes nvidia's character device
 * numbers, major 195: minor N (0..253) is the function whose "information"
 * says "Device Minor: N", and opening it makes a user of that function as
 * /dev/gpuswitch-testN does; minor 255 is the control node (nvidiactl),
 * which every client of any GPU opens and which makes a user of none.
 * Minor 254 is nvidia-modeset.ko's, not nvidia's.  As nvidia, it makes no
 * /dev entries: the tests mknod them, as nvidia-modprobe does.
 */
#include <linux/atomic.h>
#include <linux/cdev.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

static int pin;
static DECLARE_WAIT_QUEUE_HEAD(users_gone);

static int pin_set(const char *val, const struct kernel_param *kp)
{
	int r = param_set_int(val, kp);

	wake_up_all(&users_gone);
	return r;
}

static const struct kernel_param_ops pin_ops = {
	.set = pin_set,
	.get = param_get_int,
};
module_param_cb(pin, &pin_ops, &pin, 0644);
MODULE_PARM_DESC(pin, "1: an invisible user holds every device (remove() waits)");

static atomic_t fail_probe = ATOMIC_INIT(0);

static int fail_probe_set(const char *val, const struct kernel_param *kp)
{
	int n, r = kstrtoint(val, 0, &n);

	if (r)
		return r;
	if (n < 0)
		return -EINVAL;
	atomic_set(&fail_probe, n);
	return 0;
}

static int fail_probe_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&fail_probe));
}

static const struct kernel_param_ops fail_probe_ops = {
	.set = fail_probe_set,
	.get = fail_probe_get,
};
module_param_cb(fail_probe, &fail_probe_ops, NULL, 0644);
MODULE_PARM_DESC(fail_probe, "N: the next N probes fail with -EIO (1: once, then they work)");

struct gst_dev {
	struct miscdevice misc;
	atomic_t users;
	int index;
	char name[32];
	struct pci_dev *pdev;
	struct list_head node;		/* in gst_devs */
	struct proc_dir_entry *proc;	/* its /proc/driver/nvidia/gpus/ADDR, or NULL */
	bool unbind_lock;
};

/* The bound functions, for nvidia_procfs to add or drop their entries. */
static DEFINE_MUTEX(gst_lock);
static LIST_HEAD(gst_devs);
static bool nvidia_procfs;
static struct proc_dir_entry *proc_nvidia, *proc_gpus;

static int information_show(struct seq_file *m, void *v)
{
	struct gst_dev *d = m->private;

	seq_printf(m, "Model: \t\t gpuswitch test stand-in\nBus Location: \t %s\nDevice Minor: \t %d\n",
		   pci_name(d->pdev), d->index);
	return 0;
}

static int unbind_lock_show(struct seq_file *m, void *v)
{
	struct gst_dev *d = m->private;

	seq_printf(m, "%d\n", READ_ONCE(d->unbind_lock) ? 1 : 0);
	return 0;
}

static int unbind_lock_open(struct inode *inode, struct file *file)
{
	return single_open(file, unbind_lock_show, pde_data(inode));
}

/* As nvidia's: 1 takes it only with no user left, 0 lets it go. */
static ssize_t unbind_lock_write(struct file *file, const char __user *buf, size_t count, loff_t *pos)
{
	struct gst_dev *d = pde_data(file_inode(file));
	int value, r;

	r = kstrtoint_from_user(buf, count, 0, &value);
	if (r)
		return r;
	mutex_lock(&gst_lock);
	if (value == 1 && !d->unbind_lock) {
		d->unbind_lock = atomic_read(&d->users) == 0 && !READ_ONCE(pin);
		dev_info(&d->pdev->dev, "gpuswitch_test: %s\n",
			 d->unbind_lock ? "UnbindLock acquired" : "Could not acquire UnbindLock");
	} else if (value == 0 && d->unbind_lock) {
		d->unbind_lock = false;
		dev_info(&d->pdev->dev, "gpuswitch_test: UnbindLock released\n");
	}
	mutex_unlock(&gst_lock);
	return count;
}

static const struct proc_ops unbind_lock_ops = {
	.proc_open = unbind_lock_open,
	.proc_read = seq_read,
	.proc_write = unbind_lock_write,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
};

/* With gst_lock held. */
static void proc_add(struct gst_dev *d)
{
	if (!proc_gpus) {
		proc_nvidia = proc_mkdir("driver/nvidia", NULL);
		proc_gpus = proc_nvidia ? proc_mkdir("gpus", proc_nvidia) : NULL;
		if (!proc_gpus)
			return;
	}
	d->proc = proc_mkdir(pci_name(d->pdev), proc_gpus);
	if (!d->proc)
		return;
	proc_create_single_data("information", 0444, d->proc, information_show, d);
	proc_create_data("unbindLock", 0644, d->proc, &unbind_lock_ops, d);
}

static void proc_drop(struct gst_dev *d)
{
	proc_remove(d->proc);
	d->proc = NULL;
	d->unbind_lock = false;
}

#define NV_MAJOR		195
#define NV_MINOR_REGULAR_MAX	253	/* 254 is nvidia-modeset's */
#define NV_MINOR_CTL		255

static struct cdev nv_cdev, nv_ctl_cdev;
static bool nv_chrdev;

/* /dev/nvidiaN: a user of the function with that Device Minor, found with
 * gst_lock held, so that its remove() cannot free it meanwhile. */
static int nv_open(struct inode *inode, struct file *file)
{
	unsigned int minor = iminor(inode);
	struct gst_dev *d, *found = NULL;
	int r = -ENODEV;

	if (minor == NV_MINOR_CTL) {
		file->private_data = NULL;	/* of no GPU in particular */
		return 0;
	}
	mutex_lock(&gst_lock);
	list_for_each_entry(d, &gst_devs, node)
		if (d->index == minor)
			found = d;
	if (found && READ_ONCE(found->unbind_lock))
		r = -EBUSY;
	else if (found) {
		atomic_inc(&found->users);
		file->private_data = found;
		r = 0;
	}
	mutex_unlock(&gst_lock);
	return r;
}

static int nv_release(struct inode *inode, struct file *file)
{
	struct gst_dev *d = file->private_data;

	if (d && atomic_dec_and_test(&d->users))
		wake_up_all(&users_gone);
	return 0;
}

static const struct file_operations nv_fops = {
	.owner = THIS_MODULE,
	.open = nv_open,
	.release = nv_release,
};

/* With gst_lock held. */
static int nv_chrdev_add(void)
{
	int r;

	if (nv_chrdev)
		return 0;
	r = register_chrdev_region(MKDEV(NV_MAJOR, 0), NV_MINOR_REGULAR_MAX + 1, "nvidia");
	if (r)
		return r;
	r = register_chrdev_region(MKDEV(NV_MAJOR, NV_MINOR_CTL), 1, "nvidiactl");
	if (r)
		goto fail_ctl_region;
	cdev_init(&nv_cdev, &nv_fops);
	nv_cdev.owner = THIS_MODULE;
	r = cdev_add(&nv_cdev, MKDEV(NV_MAJOR, 0), NV_MINOR_REGULAR_MAX + 1);
	if (r)
		goto fail_cdev;
	cdev_init(&nv_ctl_cdev, &nv_fops);
	nv_ctl_cdev.owner = THIS_MODULE;
	r = cdev_add(&nv_ctl_cdev, MKDEV(NV_MAJOR, NV_MINOR_CTL), 1);
	if (r)
		goto fail_ctl_cdev;
	nv_chrdev = true;
	return 0;

fail_ctl_cdev:
	cdev_del(&nv_cdev);
fail_cdev:
	unregister_chrdev_region(MKDEV(NV_MAJOR, NV_MINOR_CTL), 1);
fail_ctl_region:
	unregister_chrdev_region(MKDEV(NV_MAJOR, 0), NV_MINOR_REGULAR_MAX + 1);
	return r;
}

/* With gst_lock held.  Files open on the nodes stay valid (the cdev lives
 * until they are closed), and remove() still waits for their users. */
static void nv_chrdev_drop(void)
{
	if (!nv_chrdev)
		return;
	cdev_del(&nv_ctl_cdev);
	cdev_del(&nv_cdev);
	unregister_chrdev_region(MKDEV(NV_MAJOR, NV_MINOR_CTL), 1);
	unregister_chrdev_region(MKDEV(NV_MAJOR, 0), NV_MINOR_REGULAR_MAX + 1);
	nv_chrdev = false;
}

static int nvidia_procfs_set(const char *val, const struct kernel_param *kp)
{
	struct gst_dev *d;
	bool on;
	int r = kstrtobool(val, &on);

	if (r)
		return r;
	mutex_lock(&gst_lock);
	r = on ? nv_chrdev_add() : 0;
	if (r) {
		mutex_unlock(&gst_lock);
		return r;
	}
	if (!on)
		nv_chrdev_drop();
	nvidia_procfs = on;
	list_for_each_entry(d, &gst_devs, node)
		if (on && !d->proc)
			proc_add(d);
		else if (!on && d->proc)
			proc_drop(d);
	if (!on && proc_nvidia) {
		proc_remove(proc_nvidia);
		proc_nvidia = proc_gpus = NULL;
	}
	mutex_unlock(&gst_lock);
	return 0;
}

static int nvidia_procfs_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", READ_ONCE(nvidia_procfs) ? 1 : 0);
}

static const struct kernel_param_ops nvidia_procfs_ops = {
	.set = nvidia_procfs_set,
	.get = nvidia_procfs_get,
};
module_param_cb(nvidia_procfs, &nvidia_procfs_ops, NULL, 0644);
MODULE_PARM_DESC(nvidia_procfs, "1: nvidia's /proc/driver/nvidia/gpus/ADDR (information, unbindLock) for each function, "
		 "and its character devices on major 195 (minor N per function, 255 nvidiactl)");

/* As /dev/nvidiaN, the number is given back on remove: a function bound
 * again gets the same node. */
static DEFINE_IDA(gst_ida);

static int gst_open(struct inode *inode, struct file *file)
{
	struct gst_dev *d = container_of(file->private_data, struct gst_dev, misc);

	/* as nvidia: no new client while the unbindLock is held */
	if (READ_ONCE(d->unbind_lock))
		return -EBUSY;
	atomic_inc(&d->users);
	return 0;
}

static int gst_release(struct inode *inode, struct file *file)
{
	struct gst_dev *d = container_of(file->private_data, struct gst_dev, misc);

	if (atomic_dec_and_test(&d->users))
		wake_up_all(&users_gone);
	return 0;
}

static const struct file_operations gst_fops = {
	.owner = THIS_MODULE,
	.open = gst_open,
	.release = gst_release,
};

static int gst_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct gst_dev *d;
	int r;

	/* taken one at a time: N failures, whatever probes run at once */
	if (atomic_add_unless(&fail_probe, -1, 0)) {
		dev_warn(&pdev->dev, "gpuswitch_test: probe fails as asked (fail_probe, %d left)\n",
			 atomic_read(&fail_probe));
		return -EIO;
	}
	/* as a real driver does: the function comes to D0 (power_state) */
	r = pcim_enable_device(pdev);
	if (r)
		return r;

	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	r = ida_alloc(&gst_ida, GFP_KERNEL);
	if (r < 0) {
		kfree(d);
		return r;
	}
	d->index = r;
	snprintf(d->name, sizeof(d->name), "gpuswitch-test%d", d->index);
	d->misc.minor = MISC_DYNAMIC_MINOR;
	d->misc.name = d->name;
	d->misc.fops = &gst_fops;
	d->misc.parent = &pdev->dev;
	d->misc.mode = 0666;
	r = misc_register(&d->misc);
	if (r) {
		ida_free(&gst_ida, d->index);
		kfree(d);
		return r;
	}
	d->pdev = pdev;
	pci_set_drvdata(pdev, d);
	mutex_lock(&gst_lock);
	list_add_tail(&d->node, &gst_devs);
	if (nvidia_procfs)
		proc_add(d);
	mutex_unlock(&gst_lock);
	dev_info(&pdev->dev, "gpuswitch_test: /dev/%s\n", d->name);
	return 0;
}

static void gst_remove(struct pci_dev *pdev)
{
	struct gst_dev *d = pci_get_drvdata(pdev);

	/* As nvidia's remove(): wait for every user, in D state. */
	if (atomic_read(&d->users) || READ_ONCE(pin))
		dev_info(&pdev->dev, "gpuswitch_test: remove waits for %d user(s)%s\n",
			 atomic_read(&d->users), READ_ONCE(pin) ? " and the pin" : "");
	/* gst_lock held once nobody uses it: no open of /dev/nvidiaN finds
	 * it in gst_devs between the wait and its removal from there */
	for (;;) {
		wait_event(users_gone, atomic_read(&d->users) == 0 && !READ_ONCE(pin));
		mutex_lock(&gst_lock);
		if (atomic_read(&d->users) == 0 && !READ_ONCE(pin))
			break;
		mutex_unlock(&gst_lock);
	}
	if (d->proc)
		proc_drop(d);
	list_del(&d->node);
	mutex_unlock(&gst_lock);
	misc_deregister(&d->misc);
	ida_free(&gst_ida, d->index);
	kfree(d);
	dev_info(&pdev->dev, "gpuswitch_test: removed\n");
}

static const struct pci_device_id gst_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, gst_ids);

static struct pci_driver gst_driver = {
	.name = "gpuswitch_test",
	.id_table = gst_ids,
	.probe = gst_probe,
	.remove = gst_remove,
};
static int __init gst_init(void)
{
	return pci_register_driver(&gst_driver);
}

static void __exit gst_exit(void)
{
	pci_unregister_driver(&gst_driver);
	if (proc_nvidia)
		proc_remove(proc_nvidia);
	mutex_lock(&gst_lock);
	nv_chrdev_drop();
	mutex_unlock(&gst_lock);
}

module_init(gst_init);
module_exit(gst_exit);

MODULE_DESCRIPTION("gpuswitch's test stand-in for a driver whose remove() waits for its users");
MODULE_LICENSE("GPL");
